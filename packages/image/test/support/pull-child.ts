// Runs one pull in its own process (so a test can kill -9 it half-way). Prints JSON lines.
import { openImageService } from '@berth/image';

const [root, ref] = process.argv.slice(2);
if (!root || !ref) {
  process.stderr.write('usage: pull-child <root> <ref>\n');
  process.exit(2);
}
const svc = await openImageService({ root });
try {
  const result = await svc.pull(ref, { onProgress: (e) => process.stdout.write(`${JSON.stringify(e)}\n`) });
  process.stdout.write(`${JSON.stringify({ type: 'result', result })}\n`);
} catch (err) {
  process.stderr.write(`${(err as Error).stack ?? String(err)}\n`);
  process.exit(1);
}
