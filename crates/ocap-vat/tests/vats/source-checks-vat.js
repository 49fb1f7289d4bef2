import { makeDefaultExo } from '@metamask/kernel-utils/exo';
import { makeRandom } from './lib/random.js';

// Probes of SES's source checks (html-like comments, `import(` expressions,
// direct `eval(`) as `Compartment.prototype.evaluate` runs them in our realm,
// where our patch to SES (js/patches/ses+2.3.0.patch) looks for the patterns'
// anchors first, against the unpatched algorithm: SES 2.3.0's own regexps run
// over the whole source with `String.prototype.search`.
//
// The texts below carry a `~` inside each anchor word, taken out at run time:
// SES would refuse to load this very bundle if its source contained them.

const w = s => s.replace(/~/g, '');

// Pieces that make or nearly make each pattern, and their surroundings.
const PIECES = [
  'imp~ort(', 'imp~ort (', 'imp~ort/*', 'imp~ort//', '.imp~ort(', '...imp~ort(', '..imp~ort(',
  'ximp~ort(', ' imp~ort(', 'imp~ort\n\t(', 'imp~ort', 'ev~al(', '.ev~al(', 'xev~al(', ' ev~al (',
  'ev~al', '\nev~al(', '<!~--', '--~>', '-- >', '<!-', '->', '<!', '\n', ' ', 'a', ';', '.', '..',
  '...', '"', "'", '`', '//', '/*', '*/', '(', ')', 'x=1', '_', '$', '\u00e9', '\u2028',
  '\u{1F600}', '\uD800', // a lone surrogate: SES searches itself
].map(w);

// SES 2.3.0, src/transforms.js: the patterns, and the order the checks run in
// (compartment-evaluate.js pushes the eval check to the local transforms,
// which run before the mandatory html then import checks).
const CHECKS = [
  [new RegExp(w('(^|[^.])\\bev~al(\\s*\\()'), ''), 'SES_EVAL_REJECTED'],
  [new RegExp(w('(?:<!~--|--~>)'), 'g'), 'SES_HTML_COMMENT_REJECTED'],
  [new RegExp(w('(^|[^.]|\\.\\.\\.)\\bimp~ort(\\s*(?:\\(|/[/*]))'), 'g'), 'SES_IMPORT_REJECTED'],
];

const reference = src => {
  for (const [pattern, code] of CHECKS) {
    const index = src.search(pattern);
    if (index >= 0) {
      const line = src.slice(0, index).split('\n').length + (src[index] === '\n' ? 1 : 0);
      return `${code}:${line}`;
    }
  }
  return 'pass';
};

const actual = src => {
  try {
    new Compartment({}).evaluate(src);
    return 'pass';
  } catch (e) {
    const found = /:(\d+)\. \((SES_[A-Z_]+)\)/.exec(`${e && e.message}`);
    return found ? `${found[2]}:${found[1]}` : 'pass'; // a parse error: the checks passed
  }
};

export function buildRootObject() {
  return makeDefaultExo('root', {
    /**
     * `count` random sources from `seed`: each must be accepted or rejected as
     * the unpatched checks do, with the same code and line number. Returns the
     * mismatches (at most 5) and how often each outcome came up.
     */
    compare(seed, count) {
      const random = makeRandom(seed);
      const mismatches = [];
      const outcomes = {};
      for (let i = 0; i < count; i += 1) {
        const n = 1 + Math.floor(random() * 12);
        let src = '';
        for (let j = 0; j < n; j += 1) src += PIECES[Math.floor(random() * PIECES.length)];
        const expected = reference(src);
        const got = actual(src);
        const kind = expected.split(':')[0];
        outcomes[kind] = (outcomes[kind] || 0) + 1;
        if (got !== expected && mismatches.length < 5) mismatches.push({ src, expected, got });
      }
      return harden({ mismatches, outcomes });
    },
  });
}
