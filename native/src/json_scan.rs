//! The byte scan of a JSON array of objects as it arrives (src/model/json-array-reader.ts): the
//! same state machine as the reader's own loop, for its common states only — between the array's
//! elements (`,`, whitespace, an element's `{`) and inside an element (strings with their escapes,
//! depth) — so that a 13 MB apply body's bytes are stepped over here, not one by one in
//! JavaScript (~25 ms of the main thread's parse at 10k Services). Anything else (the array's `]`,
//! a byte that is not allowed there, too deep a nesting) stops the scan at that byte: the reader
//! takes it from there, exactly as it would have.
//!
//! State (an Int32Array, in and out): [pos, depth, inString, phase, base, elemStart, status].
//! Elements that closed are appended to `spans` as (start, end) pairs, at most spans.len() / 2 of
//! them per call (status STOP_FULL when that many closed). `pos` may end one past `to`: an escape's
//! backslash was the last byte there, and its second byte has not arrived yet.

// phases, as the reader numbers them
const FIRST: i32 = 1;
const NEXT: i32 = 2;
const AFTER: i32 = 3;
const IN: i32 = 4;
// why the scan stopped
pub const STOP_END: i32 = 0; // every byte up to `to` scanned
pub const STOP_JS: i32 = 1; // at `pos`: a byte the reader handles itself
pub const STOP_FULL: i32 = 2; // spans full
pub const STOP_DEEP: i32 = 3; // nesting deeper than max_depth (the reader steps aside)

pub struct ScanState {
    pub pos: usize,
    pub depth: i32,
    pub in_string: bool,
    pub phase: i32,
    pub base: i32,
    pub elem_start: usize,
}

fn is_space(c: u8) -> bool {
    c == b' ' || c == b'\n' || c == b'\r' || c == b'\t'
}

/// Scans `b[st.pos..to]`; returns (status, elements appended to `spans`).
pub fn scan(b: &[u8], to: usize, st: &mut ScanState, max_depth: i32, spans: &mut [i32]) -> (i32, usize) {
    let to = to.min(b.len());
    let max_spans = spans.len() / 2;
    let mut n = 0usize;
    let mut i = st.pos;
    while i < to {
        if st.phase == IN {
            if st.in_string {
                // to the closing quote; a backslash skips the next byte
                while i < to {
                    let d = b[i];
                    if d == b'"' {
                        break;
                    }
                    i += if d == b'\\' { 2 } else { 1 };
                }
                if i >= to {
                    break;
                }
                st.in_string = false;
                i += 1;
                continue;
            }
            let c = b[i];
            i += 1;
            if c == b'"' {
                st.in_string = true;
            } else if c == b'{' || c == b'[' {
                st.depth += 1;
                if st.depth > max_depth {
                    st.pos = i;
                    return (STOP_DEEP, n);
                }
            } else if c == b'}' || c == b']' {
                st.depth -= 1;
                if st.depth == st.base {
                    if n == max_spans {
                        // (not taken: the closing byte is scanned again on the next call)
                        st.depth += 1;
                        st.pos = i - 1;
                        return (STOP_FULL, n);
                    }
                    spans[2 * n] = st.elem_start as i32;
                    spans[2 * n + 1] = i as i32;
                    n += 1;
                    st.phase = AFTER;
                }
            }
            continue;
        }
        let c = b[i];
        if is_space(c) {
            i += 1;
            continue;
        }
        if (st.phase == FIRST || st.phase == NEXT) && c == b'{' {
            i += 1;
            st.phase = IN;
            st.depth = st.base + 1;
            st.elem_start = i - 1;
        } else if st.phase == AFTER && c == b',' {
            i += 1;
            st.phase = NEXT;
        } else {
            st.pos = i;
            return (STOP_JS, n);
        }
    }
    st.pos = i;
    (STOP_END, n)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(text: &[u8], base: i32) -> (Vec<(i32, i32)>, i32, usize) {
        let mut st = ScanState { pos: 0, depth: base, in_string: false, phase: FIRST, base, elem_start: 0 };
        let mut spans = [0i32; 4];
        let mut out = Vec::new();
        loop {
            let (status, n) = scan(text, text.len(), &mut st, 64, &mut spans);
            for k in 0..n {
                out.push((spans[2 * k], spans[2 * k + 1]));
            }
            if status != STOP_FULL {
                return (out, status, st.pos);
            }
        }
    }

    #[test]
    fn elements_and_their_spans() {
        let t = br#"{"a":"}\"{"} , {"b":[{}]},{}]"#;
        let (spans, status, pos) = run(t, 1);
        assert_eq!(spans, vec![(0, 12), (15, 25), (26, 28)]);
        assert_eq!(status, STOP_JS);
        assert_eq!(t[pos], b']');
    }

    #[test]
    fn too_deep_and_stray_bytes_stop() {
        let deep = format!("{}{}", "{\"a\":".repeat(1), "[".repeat(70));
        assert_eq!(run(deep.as_bytes(), 1).1, STOP_DEEP);
        assert_eq!(run(b"{} x", 1).1, STOP_JS);
        assert_eq!(run(b"[", 1).1, STOP_JS);
    }
}
