//! A small eBPF assembler: instructions as the kernel reads them (linux/bpf.h `struct bpf_insn`,
//! 8 bytes, little-endian), with forward and backward jumps to named labels resolved at the end.
//! No crates.io dependency can assemble BPF here, and the programs are short enough to read as
//! instructions; each emitter names the operation so a program reads like its C.

pub type Reg = u8;
pub const R0: Reg = 0;
pub const R1: Reg = 1;
pub const R2: Reg = 2;
pub const R3: Reg = 3;
pub const R4: Reg = 4;
pub const R5: Reg = 5;
pub const R6: Reg = 6;
pub const R7: Reg = 7;
pub const R8: Reg = 8;
pub const R9: Reg = 9;
pub const FP: Reg = 10;

/// Sizes of a load or store: BPF_W (4), BPF_H (2), BPF_B (1), BPF_DW (8).
#[derive(Clone, Copy)]
pub enum Size {
    B = 0x10,
    H = 0x08,
    W = 0x00,
    DW = 0x18,
}

/// Conditions of a jump (BPF_JMP class, 64-bit compare).
#[derive(Clone, Copy)]
pub enum Cond {
    Eq = 0x10,
    Gt = 0x20, // unsigned >
    Ge = 0x30, // unsigned >=
    Ne = 0x50,
    Lt = 0xa0, // unsigned <
}

pub fn encode(code: u8, dst: Reg, src: Reg, off: i16, imm: i32) -> u64 {
    code as u64 | (dst as u64) << 8 | (src as u64) << 12 | ((off as u16) as u64) << 16 | ((imm as u32) as u64) << 32
}

#[derive(Default)]
pub struct Asm {
    insns: Vec<u64>,
    fixups: Vec<(usize, &'static str)>,
    labels: Vec<(&'static str, usize)>,
}

const BPF_LD: u8 = 0x00;
const BPF_LDX: u8 = 0x01;
const BPF_ST: u8 = 0x02;
const BPF_STX: u8 = 0x03;
const BPF_JMP: u8 = 0x05;
const BPF_ALU64: u8 = 0x07;
const BPF_MEM: u8 = 0x60;
const BPF_IMM: u8 = 0x00;
const BPF_K: u8 = 0x00;
const BPF_X: u8 = 0x08;
const BPF_PSEUDO_MAP_FD: Reg = 1;
/// bpf_map_lookup_elem (linux/bpf.h enum bpf_func_id)
pub const MAP_LOOKUP_ELEM: i32 = 1;

impl Asm {
    pub fn new() -> Asm {
        Asm::default()
    }
    fn push(&mut self, code: u8, dst: Reg, src: Reg, off: i16, imm: i32) {
        self.insns.push(encode(code, dst, src, off, imm));
    }
    pub fn label(&mut self, l: &'static str) {
        debug_assert!(!self.labels.iter().any(|x| x.0 == l), "label {l} defined twice");
        self.labels.push((l, self.insns.len()));
    }
    /// dst = *(size *)(src + off)
    pub fn load(&mut self, size: Size, dst: Reg, src: Reg, off: i16) {
        self.push(BPF_LDX | BPF_MEM | size as u8, dst, src, off, 0);
    }
    /// *(size *)(dst + off) = src
    pub fn store(&mut self, size: Size, dst: Reg, off: i16, src: Reg) {
        self.push(BPF_STX | BPF_MEM | size as u8, dst, src, off, 0);
    }
    /// *(size *)(dst + off) = imm
    pub fn store_imm(&mut self, size: Size, dst: Reg, off: i16, imm: i32) {
        self.push(BPF_ST | BPF_MEM | size as u8, dst, 0, off, imm);
    }
    pub fn mov(&mut self, dst: Reg, src: Reg) {
        self.push(BPF_ALU64 | 0xb0 | BPF_X, dst, src, 0, 0);
    }
    pub fn mov_imm(&mut self, dst: Reg, imm: i32) {
        self.push(BPF_ALU64 | 0xb0 | BPF_K, dst, 0, 0, imm);
    }
    pub fn add_imm(&mut self, dst: Reg, imm: i32) {
        self.push(BPF_ALU64 | BPF_K, dst, 0, 0, imm);
    }
    pub fn add(&mut self, dst: Reg, src: Reg) {
        self.push(BPF_ALU64 | BPF_X, dst, src, 0, 0);
    }
    pub fn sub(&mut self, dst: Reg, src: Reg) {
        self.push(BPF_ALU64 | 0x10 | BPF_X, dst, src, 0, 0);
    }
    /// dst >>= imm (logical)
    pub fn rsh_imm(&mut self, dst: Reg, imm: i32) {
        self.push(BPF_ALU64 | 0x70 | BPF_K, dst, 0, 0, imm);
    }
    pub fn and_imm(&mut self, dst: Reg, imm: i32) {
        self.push(BPF_ALU64 | 0x50 | BPF_K, dst, 0, 0, imm);
    }
    /// dst = &map (a 16-byte ld_imm64 with the map's fd, which the kernel resolves at load)
    pub fn load_map(&mut self, dst: Reg, map_fd: i32) {
        self.push(BPF_LD | BPF_IMM | Size::DW as u8, dst, BPF_PSEUDO_MAP_FD, 0, map_fd);
        self.push(0, 0, 0, 0, 0);
    }
    /// r0 = bpf_map_lookup_elem(&map, fp + key_off): the value or NULL (clobbers r1-r5)
    pub fn map_lookup(&mut self, map_fd: i32, key_off: i16) {
        self.load_map(R1, map_fd);
        self.mov(R2, FP);
        self.add_imm(R2, key_off as i32);
        self.call(MAP_LOOKUP_ELEM);
    }
    pub fn call(&mut self, helper: i32) {
        self.push(BPF_JMP | 0x80, 0, 0, 0, helper);
    }
    pub fn exit(&mut self) {
        self.push(BPF_JMP | 0x90, 0, 0, 0, 0);
    }
    /// goto label
    pub fn jump(&mut self, to: &'static str) {
        self.fixups.push((self.insns.len(), to));
        self.push(BPF_JMP, 0, 0, 0, 0);
    }
    /// if (dst cond imm) goto label
    pub fn jump_imm(&mut self, cond: Cond, dst: Reg, imm: i32, to: &'static str) {
        self.fixups.push((self.insns.len(), to));
        self.push(BPF_JMP | cond as u8 | BPF_K, dst, 0, 0, imm);
    }
    /// if (dst cond src) goto label
    pub fn jump_reg(&mut self, cond: Cond, dst: Reg, src: Reg, to: &'static str) {
        self.fixups.push((self.insns.len(), to));
        self.push(BPF_JMP | cond as u8 | BPF_X, dst, src, 0, 0);
    }
    /// The instructions with every jump's offset filled in. Panics on a label never defined: a
    /// program is a constant of the addon, so that is a bug caught by the first test that loads it.
    pub fn finish(mut self) -> Vec<u64> {
        for &(at, l) in &self.fixups {
            let target = self.labels.iter().find(|x| x.0 == l).unwrap_or_else(|| panic!("label {l} not defined")).1;
            let off = (target as i64 - at as i64 - 1) as i16;
            self.insns[at] = self.insns[at] & !(0xffffu64 << 16) | ((off as u16) as u64) << 16;
        }
        self.insns
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jumps_resolve_forward_and_back() {
        let mut a = Asm::new();
        a.label("top");
        a.jump_imm(Cond::Eq, R1, 0, "end"); // 0
        a.mov_imm(R0, 1); // 1
        a.jump_imm(Cond::Ne, R1, 0, "top"); // 2
        a.label("end");
        a.exit(); // 3
        let v = a.finish();
        let off = |i: usize| ((v[i] >> 16) & 0xffff) as u16 as i16;
        assert_eq!(off(0), 2);
        assert_eq!(off(2), -3);
        assert_eq!(v[0] & 0xff, 0x15); // JEQ | K
        assert_eq!(v[2] & 0xff, 0x55); // JNE | K
        assert_eq!(v[3] & 0xff, 0x95); // EXIT
    }

    #[test]
    fn loads_and_stores_encode_as_the_kernel_reads_them() {
        let mut a = Asm::new();
        a.load(Size::W, R2, R6, 76); // r2 = *(u32 *)(r6 + 76)
        a.store(Size::H, FP, -4, R4); // *(u16 *)(fp - 4) = r4
        a.load_map(R1, 7);
        let v = a.finish();
        assert_eq!(v[0], 0x61 | 2 << 8 | 6 << 12 | 76 << 16);
        assert_eq!(v[1] & 0xff, 0x6b);
        assert_eq!(((v[1] >> 16) & 0xffff) as u16 as i16, -4);
        assert_eq!(v[2] & 0xff, 0x18);
        assert_eq!((v[2] >> 12) & 0xf, 1);
        assert_eq!(v[2] >> 32, 7);
        assert_eq!(v.len(), 4);
    }
}
