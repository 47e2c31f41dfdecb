// The kernel path end to end behind AF_PACKET ports, whose socket filter leaves it the frames it
// forwards (test/lib/kernel-path-suite.js has the tests).
import test from 'ava';
import { kernelPathSuite } from './lib/kernel-path-suite.js';

kernelPathSuite(test, 'afpacket');
