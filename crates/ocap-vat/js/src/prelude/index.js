// Entry point of the prelude bundle that every vat runtime evaluates once.
// Module evaluation order is the import order below (ESM semantics, which
// esbuild keeps when bundling), so SES locks the realm down before
// liveslots and the supervisor load.
import './00-host.js';
import './harden.js';
import './source-scan.js';
import './eventual-send-native.js';
import './01-shims.js';
import './02-repair.js';
import './03-harden.js';
import './04-pass-style.js';
import './05-pass-style.js';
import '../supervisor.js';
