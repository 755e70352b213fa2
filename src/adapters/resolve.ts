/** Names to addresses (the system resolver), for judging what a network config may take over: the etcd endpoints. */
import { lookup } from 'node:dns/promises';

/**
 * The addresses of each name (an address literal is itself); a name that does not resolve within
 * `timeoutMs` is given no addresses: the judgement then goes without it rather than wait on DNS.
 */
export async function resolveNames(names: readonly string[], timeoutMs = 2000): Promise<Map<string, string[]>> {
  const one = async (name: string): Promise<string[]> => {
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<string[]>((resolve) => {
      timer = setTimeout(() => {
        resolve([]);
      }, timeoutMs);
    });
    try {
      return await Promise.race([
        lookup(name, { all: true }).then(
          (as) => as.map((a) => a.address),
          () => [],
        ),
        late,
      ]);
    } finally {
      clearTimeout(timer);
    }
  };
  const unique = [...new Set(names)];
  const found = await Promise.all(unique.map(one));
  return new Map(unique.map((n, i) => [n, found[i] ?? []]));
}
