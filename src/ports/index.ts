// Port implementations in one import. Native ports load their addon lazily (first use), so
// importing this on a machine without the addon is fine; check nativeAvailable() for why not.
export type { BurstArea, Port, PortStats } from './port.js';
export { AfPacketPort, AfXdpPort, NativePort, TapPort, nativeAvailable, openAfXdpOrPacket, removeTap, wait } from './native.js';
export type { AfPacketPortOptions, AfXdpPortOptions, NativePortStats, TapPortOptions } from './native.js';
export { CapturePort, PcapPort, PcapWriter, encodePcap, parsePcap, readPcap } from './pcap.js';
export type { PcapFile, PcapPortOptions, PcapRecord } from './pcap.js';
