// Shims installed before SES samples the global object, as @endo/init does:
// the shared HandledPromise. SES samples the universal globals when it
// repairs intrinsics, so HandledPromise must exist by then for vat
// compartments to get it (liveslots and every vat bundle must share it).
import 'ses';
import '@endo/eventual-send/shim.js';

// SES has taken the host's substring search (source-scan.js); nothing else may.
delete globalThis[Symbol.for('@ocap findAll')];
// The HandledPromise shim has taken `nonThenableObject` (eventual-send-native.js).
delete globalThis[Symbol.for('@ocap nonThenableObject')];
