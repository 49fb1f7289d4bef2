// Before SES loads: the host's substring search for SES's source checks
// (src/source_scan.rs), which our patch to SES (js/patches/ses+2.3.0.patch)
// takes when its `transforms.js` loads. 01-shims.js removes the global right
// after SES has loaded.

import { host } from './00-host.js';

if (typeof host.findAll === 'function') {
  globalThis[Symbol.for('@ocap findAll')] = host.findAll;
}
