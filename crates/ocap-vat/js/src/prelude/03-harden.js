// SES, phase two: freeze the intrinsics and reveal `harden`.
globalThis.hardenIntrinsics();
