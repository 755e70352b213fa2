// flannel's subnet key regexp, reproduced in linear time (src/core/flannel/subnet-key.ts).
import test from 'ava';
import fc from 'fast-check';
import { matchFlannelKey } from '../../src/core/flannel/subnet-key.js';

test("property: matchFlannelKey is flannel's subnetRegex (leftmost-first, `.` any rune but \\n, `$` end of text)", (t) => {
  const re = /(\d+\.\d+[^\n]\d+[^\n]\d+)-(\d+)(?:&([a-f\d:]+)-(\d+))?$/u;
  const char = fc.constantFrom(...'0123456789..--&&:afAFx\n😀'.split(/(?:)/u));
  fc.assert(
    fc.property(
      fc.array(char, { maxLength: 24 }).map((a) => a.join('')),
      (s) => {
        const m = re.exec(s);
        const g = matchFlannelKey(s);
        return (
          JSON.stringify(m ? [m[1], m[2], m[3], m[4]] : null) ===
          JSON.stringify(g ? [g.v4, g.len4, g.v6, g.len6] : null)
        );
      },
    ),
    { numRuns: 20000 },
  );
  const start = performance.now();
  t.is(matchFlannelKey(`1.${'1'.repeat(300000)}-`), undefined);
  t.deepEqual(matchFlannelKey(`${'1.1.1.1.'.repeat(40000)}1-24`), { v4: '1.1.1.1', len4: '24' });
  t.true(performance.now() - start < 2000, 'linear time on long runs of digits');
});
