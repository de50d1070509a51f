/**
 * dockerode and testcontainers against berthd: a container from a local image with an exposed
 * port, waited for (port, log line, health check), exec'd into, files copied in and out, stopped.
 */
import { PassThrough } from 'node:stream';
import { afterAll, beforeAll, expect, it } from 'vitest';
import Docker from 'dockerode';
import { describePrivileged } from '../support/privileged.js';
import { startBerthd, type BerthdInstance } from './support/berthd.js';
import { loadBusybox } from './support/images.js';

function tarOf(name: string, content: string): Buffer {
  // A one-file ustar archive, enough for putArchive.
  const header = Buffer.alloc(512);
  header.write(name, 0);
  header.write('0000644\0', 100);
  header.write('0000000\0', 108);
  header.write('0000000\0', 116);
  header.write(content.length.toString(8).padStart(11, '0') + '\0', 124);
  header.write(Math.floor(Date.now() / 1000).toString(8).padStart(11, '0') + '\0', 136);
  header.write('        ', 148);
  header.write('0', 156);
  header.write('ustar\0', 257);
  header.write('00', 263);
  let sum = 0;
  for (const b of header) sum += b;
  header.write(sum.toString(8).padStart(6, '0') + '\0 ', 148);
  const body = Buffer.alloc(Math.ceil(content.length / 512) * 512);
  body.write(content);
  return Buffer.concat([header, body, Buffer.alloc(1024)]);
}

async function collect(stream: NodeJS.ReadableStream): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of stream as AsyncIterable<Buffer>) chunks.push(c);
  return Buffer.concat(chunks);
}

describePrivileged('compat: dockerode and testcontainers against berthd', () => {
  let berthd: BerthdInstance;
  let client: Docker;

  beforeAll(async () => {
    berthd = await startBerthd();
    await loadBusybox(berthd.env, 'busybox:latest');
    await loadBusybox(berthd.env, 'busybox-healthy:1', { cmd: ['sleep', '1000'] });
    client = new Docker({ socketPath: berthd.socket });
  }, 180_000);

  afterAll(async () => {
    await berthd?.destroy();
  }, 120_000);

  it('dockerode: create with a random host port, attach, start, inspect, exec, archive, logs, stop, remove', async () => {
    expect(String(await client.ping())).toBe('OK');
    const container = await client.createContainer({
      Image: 'busybox:latest',
      Cmd: ['sh', '-c', 'echo ready; exec httpd -f -p 8080 -h /tmp'],
      ExposedPorts: { '8080/tcp': {} },
      HostConfig: { PortBindings: { '8080/tcp': [{ HostPort: '0' }] } },
      Labels: { 'compat.test': 'dockerode' },
    });
    // Non-hijacked attach: a plain 200 whose body streams the multiplexed output.
    const attached = (await container.attach({ stream: true, stdout: true, stderr: true })) as NodeJS.ReadableStream;
    const stdout = new PassThrough();
    client.modem.demuxStream(attached, stdout, new PassThrough());
    await container.start();
    const first = await new Promise<string>((resolve) => stdout.once('data', (d: Buffer) => resolve(d.toString())));
    expect(first).toBe('ready\n');

    const info = await container.inspect();
    expect(info.State.Running).toBe(true);
    const binding = info.NetworkSettings.Ports['8080/tcp']?.[0];
    expect(Number(binding?.HostPort)).toBeGreaterThan(0);

    const listed = await client.listContainers({ filters: { label: ['compat.test=dockerode'] } });
    expect(listed.map((c) => c.Id)).toEqual([container.id]);
    expect(listed[0]?.Ports.some((p) => p.PrivatePort === 8080 && (p.PublicPort ?? 0) > 0)).toBe(true);

    const exec = await container.exec({ Cmd: ['sh', '-c', 'cat; echo exit-soon; exit 7'], AttachStdin: true, AttachStdout: true, AttachStderr: true });
    const execStream = await exec.start({ hijack: true, stdin: true });
    const execOut = new PassThrough();
    client.modem.demuxStream(execStream, execOut, new PassThrough());
    execStream.end('from stdin\n');
    const execText = (await execStreamEnd(execStream, execOut)).toString();
    expect(execText).toBe('from stdin\nexit-soon\n');
    expect((await exec.inspect()).ExitCode).toBe(7);

    await container.putArchive(tarOf('hello.txt', 'put by dockerode\n'), { path: '/tmp' });
    const archive = await collect(await container.getArchive({ path: '/tmp/hello.txt' }));
    expect(archive.subarray(0, 9).toString()).toBe('hello.txt');
    expect(archive.toString('latin1')).toContain('put by dockerode\n');
    const page = await fetch(`http://127.0.0.1:${binding?.HostPort}/hello.txt`).then((r) => r.text());
    expect(page).toBe('put by dockerode\n');

    const logs = (await container.logs({ stdout: true, stderr: true, follow: false })) as Buffer;
    expect(logs.subarray(8).toString()).toBe('ready\n');
    expect(logs[0]).toBe(1);

    await container.stop({ t: 1 });
    await expect(container.stop()).rejects.toMatchObject({ statusCode: 304 });
    expect((await container.wait()).StatusCode).toBe(137);
    await container.remove();
    await expect(container.inspect()).rejects.toMatchObject({ statusCode: 404 });
  });

  it('dockerode: non-hijacked exec start with a never-ending request body', async () => {
    const container = await client.createContainer({ Image: 'busybox:latest', Cmd: ['sleep', '100'] });
    await container.start();
    try {
      const exec = await container.exec({ Cmd: ['echo', 'no hijack'], AttachStdout: true, AttachStderr: true, AttachStdin: true });
      const stream = await exec.start({ stdin: true, Detach: false, Tty: false });
      const out = new PassThrough();
      client.modem.demuxStream(stream, out, new PassThrough());
      const text = (await execStreamEnd(stream, out)).toString();
      expect(text).toBe('no hijack\n');
      expect((await exec.inspect()).ExitCode).toBe(0);
    } finally {
      await container.remove({ force: true });
    }
  });

  it('testcontainers: port, log and health-check waits, exec, copy in and out, stop', async () => {
    process.env['DOCKER_HOST'] = `unix://${berthd.socket}`;
    process.env['TESTCONTAINERS_RYUK_DISABLED'] = 'true';
    const { GenericContainer, Wait } = await import('testcontainers');

    const web = await new GenericContainer('busybox:latest')
      .withCommand(['sh', '-c', 'echo booted; exec httpd -f -p 8080 -h /tmp'])
      .withExposedPorts(8080)
      .withCopyContentToContainer([{ content: 'copied by testcontainers\n', target: '/tmp/index.html' }])
      .withWaitStrategy(Wait.forListeningPorts())
      .start();
    try {
      const url = `http://${web.getHost()}:${web.getMappedPort(8080)}/index.html`;
      expect(await fetch(url).then((r) => r.text())).toBe('copied by testcontainers\n');
      const result = await web.exec(['sh', '-c', 'echo exec-out; exit 3']);
      expect(result.exitCode).toBe(3);
      expect(result.output).toContain('exec-out');
      await web.copyContentToContainer([{ content: 'second file\n', target: '/tmp/second.txt' }]);
      const archive = await collect(await web.copyArchiveFromContainer('/tmp/second.txt'));
      expect(archive.toString('latin1')).toContain('second file\n');
    } finally {
      await web.stop();
    }

    const logged = await new GenericContainer('busybox:latest')
      .withCommand(['sh', '-c', 'sleep 1; echo server is up; sleep 100'])
      .withWaitStrategy(Wait.forLogMessage('server is up'))
      .start();
    // logs() follows: read until the line shows, then let go of the stream.
    const logStream = await logged.logs();
    let seen = '';
    for await (const chunk of logStream as AsyncIterable<Buffer | string>) {
      seen += chunk.toString();
      if (seen.includes('server is up')) break;
    }
    expect(seen).toContain('server is up');
    await logged.stop();

    const healthy = await new GenericContainer('busybox-healthy:1')
      .withHealthCheck({ test: ['CMD-SHELL', 'test -d /tmp'], interval: 500, timeout: 2000, retries: 3, startPeriod: 0 })
      .withWaitStrategy(Wait.forHealthCheck())
      .start();
    const status = await new Docker({ socketPath: berthd.socket }).getContainer(healthy.getId()).inspect();
    expect(status.State.Health?.Status).toBe('healthy');
    await healthy.stop();
  });
});

/** Resolves with everything written to `out` once the HTTP stream ends. */
async function execStreamEnd(stream: NodeJS.ReadableStream, out: PassThrough): Promise<Buffer> {
  const chunks: Buffer[] = [];
  out.on('data', (c: Buffer) => chunks.push(c));
  await new Promise<void>((resolve) => {
    stream.once('end', resolve);
    stream.once('close', resolve);
  });
  await new Promise((r) => setImmediate(r));
  return Buffer.concat(chunks);
}

