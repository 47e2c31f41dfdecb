// The kernel path end to end behind AF_XDP ports (test/lib/kernel-path-suite.js has the tests).
import test from 'ava';
import { kernelPathSuite } from './lib/kernel-path-suite.js';

kernelPathSuite(test, 'afxdp');
