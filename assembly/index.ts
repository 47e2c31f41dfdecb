export * from "./layout";
export function heap_base(): usize { return __heap_base; }
