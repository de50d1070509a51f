import { mkdtemp, mkdir, copyFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { expect, it, onTestFinished } from 'vitest';
import { parseDaemonArgs, startDaemon } from '@berth/daemon';
import { BerthClient, runContainer, pullImage } from '@berth/client';
import { serveRegistry } from '@berth/registry';
import { openImageService, createDirectoryTar } from '@berth/image';

it('client against in-process berthd', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'berth-docs-c-'));
  onTestFinished(() => rm(dir, { recursive: true, force: true }));
  const tag = randomBytes(3).toString('hex');
  const registry = await serveRegistry({ addr: '127.0.0.1:0', root: join(dir, 'registry'), log: false, gc: false });
  onTestFinished(() => registry.close());
  const host = new URL(registry.url).host;
  const rootfs = join(dir, 'rootfs');
  await mkdir(join(rootfs, 'bin'), { recursive: true });
  await copyFile('/bin/busybox', join(rootfs, 'bin/busybox'));
  const images = await openImageService({ root: join(dir, 'image') });
  await images.import(createDirectoryTar(rootfs), { reference: `${host}/tools/busybox:1`, changes: { Cmd: ['/bin/busybox', 'sh'] } });
  await images.push(`${host}/tools/busybox:1`);

  const { options } = parseDaemonArgs(['-H', `unix://${dir}/berth.sock`, '--data-root', `${dir}/data`, '--exec-root', `${dir}/exec`,
    '--bridge', `bd${tag}`, '--bip', `10.${200 + (parseInt(tag.slice(0,2),16)%54)}.${parseInt(tag.slice(2,4),16)}.1/24`, '--bridge-prefix', `bd${tag.slice(0,2)}-`,
    '--firewall-table', `berthd${tag}`, '--cgroup-parent', `berth-docs-${tag}`]);
  const daemon = await startDaemon(options);
  console.log(daemon.addresses);
  const client = new BerthClient({ host: `unix://${dir}/berth.sock` });
  try {
    const ref = `${host}/tools/busybox:1`;
    const pulled = await pullImage(client, ref, { onProgress: (m) => console.log(m.id ?? '', m.status) });
    console.log('pulled', pulled);
    const result = await runContainer(client, { Image: ref, Cmd: ['/bin/busybox', 'sh', '-c', 'echo hi; exit 3'], HostConfig: { AutoRemove: true } });
    console.log(result);
    expect(result.statusCode).toBe(3);
    const created = await client.containers.create({ Image: ref, Cmd: ['/bin/busybox', 'sh', '-c', 'echo started; /bin/busybox sleep 30'] }, { name: `web-${tag}` });
    await client.containers.start(created.Id);
    await new Promise((r) => setTimeout(r, 500));
    for await (const frame of await client.containers.logs(created.Id, { tail: 10 })) {
      (frame.stream === 'stderr' ? process.stderr : process.stdout).write(frame.data);
    }
    const { Id } = await client.exec.create(created.Id, { Cmd: ['/bin/busybox', 'tr', 'a-z', 'A-Z'], AttachStdin: true, AttachStdout: true, AttachStderr: true });
    const session = await client.exec.start(Id);
    session.stdin.end('shout\n');
    let out = '';
    for await (const frame of session.output) out += frame.data.toString();
    console.log('exec', out, (await client.exec.inspect(Id)).ExitCode);
    expect(out).toBe('SHOUT\n');
    await client.containers.remove(created.Id, { force: true });
  } finally {
    client.close();
    await daemon.close();
  }
}, 180_000);
