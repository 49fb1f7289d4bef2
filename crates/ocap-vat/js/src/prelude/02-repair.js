// SES, phase one: repair the intrinsics (the JS kernel's endoify-node options)
// after the shims.
import 'ses';

globalThis.repairIntrinsics({
  consoleTaming: 'unsafe',
  errorTaming: 'unsafe',
  overrideTaming: 'severe',
  domainTaming: 'unsafe',
  stackFiltering: 'concise',
  errorTrapping: 'none',
  unhandledRejectionTrapping: 'none',
});
