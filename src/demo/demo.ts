export interface DemoOptions { durationS?: number; rounds?: number; mode: 'auto' | 'netns' | 'synthetic' }
export async function runDemo(_o: DemoOptions): Promise<number> {
  console.error('wdp demo: not built yet');
  return 1;
}
