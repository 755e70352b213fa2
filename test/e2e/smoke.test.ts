import test from 'ava';
import { Lab } from '../helpers/lab.js';
import { until } from '../helpers/procs.js';

test('smoke', async (t) => {
  const lab = await Lab.create({ hosts: 3 });
  t.teardown(() => lab.destroy());
  for (const h of lab.hosts) await lab.startWeft(h, lab.writeSpec(h, 'cidr: 198.18.0.0/16\nbackend:\n  type: vxlan'));
  const cs = [];
  for (const h of lab.hosts) cs.push(await lab.addContainer(h));
  for (const a of cs) for (const b of cs) if (a !== b) t.true(await until(() => lab.ping(a.ns, b.ip), 5000), `${a.ip} -> ${b.ip}`);
  t.log(await lab.ip(lab.hosts[0]!.ns, ['route']));
  t.log(lab.hosts[0]!.weft!.output());
});
