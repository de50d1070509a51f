// fs.promises is read on use: importing node:fs/promises loads it (and readline) at start-up.
import { promises as fsp } from 'node:fs';
import { join } from 'node:path';
import type { Cli, Opts } from '../context.js';
import { renderObject } from '../format/list.js';

export const CLI_VERSION = '0.1.0';

/** `berth version`: the client section, then the server's components (like docker version). */
export async function version(cli: Cli, _args: string[], opts: Opts): Promise<number> {
  const client = await cli.client();
  const clientInfo = {
    Version: CLI_VERSION,
    ApiVersion: '',
    DefaultAPIVersion: (await import('@berth/client')).MAX_API_VERSION,
    NodeVersion: process.version,
    Os: process.platform,
    Arch: process.arch === 'x64' ? 'amd64' : process.arch,
    Host: client.host,
  };
  let server: Awaited<ReturnType<typeof client.system.version>> | undefined;
  let failure: unknown;
  try {
    clientInfo.ApiVersion = await client.apiVersion();
    server = await client.system.version();
  } catch (error) {
    failure = error;
  }
  if (opts.format) {
    cli.out(renderObject({ Client: clientInfo, Server: server ?? null }, String(opts.format)));
  } else {
    const pad = (k: string): string => `${k}:`.padEnd(19);
    let text = 'Client:\n';
    text += ` ${pad('Version')}${clientInfo.Version}\n`;
    const downgraded = clientInfo.ApiVersion && clientInfo.ApiVersion !== clientInfo.DefaultAPIVersion ? ` (downgraded from ${clientInfo.DefaultAPIVersion})` : '';
    text += ` ${pad('API version')}${clientInfo.ApiVersion || clientInfo.DefaultAPIVersion}${downgraded}\n`;
    text += ` ${pad('Node version')}${clientInfo.NodeVersion}\n`;
    text += ` ${pad('OS/Arch')}${clientInfo.Os}/${clientInfo.Arch}\n`;
    text += ` ${pad('Host')}${clientInfo.Host}\n`;
    if (server) {
      text += `\nServer:${server.Platform?.Name ? ` ${server.Platform.Name}` : ''}\n`;
      const components = server.Components?.length ? server.Components : [{ Name: 'Engine', Version: server.Version, Details: { ApiVersion: server.ApiVersion, MinAPIVersion: server.MinAPIVersion ?? '', GitCommit: server.GitCommit, GoVersion: server.GoVersion, Os: server.Os, Arch: server.Arch, BuildTime: server.BuildTime ?? '', Experimental: String(server.Experimental ?? false) } }];
      for (const component of components) {
        text += ` ${component.Name}:\n`;
        const d = component.Details ?? {};
        const pad2 = (k: string): string => `${k}:`.padEnd(18);
        text += `  ${pad2('Version')}${component.Version}\n`;
        if (d.ApiVersion) text += `  ${pad2('API version')}${d.ApiVersion}${d.MinAPIVersion ? ` (minimum version ${d.MinAPIVersion})` : ''}\n`;
        if (d.GoVersion) text += `  ${pad2('Go version')}${d.GoVersion}\n`;
        if (d.GitCommit) text += `  ${pad2('Git commit')}${d.GitCommit}\n`;
        if (d.BuildTime) text += `  ${pad2('Built')}${d.BuildTime}\n`;
        if (d.Os) text += `  ${pad2('OS/Arch')}${d.Os}/${d.Arch}\n`;
        if (d.Experimental !== undefined) text += `  ${pad2('Experimental')}${d.Experimental}\n`;
      }
    }
    cli.out(text);
  }
  if (failure) throw failure;
  return 0;
}

/** `berth completion bash|zsh`: a script generated from the same command tree as --help. */
export async function completion(cli: Cli, args: string[]): Promise<number> {
  const { buildProgram } = await import('../program.js');
  const { bashCompletion, zshCompletion } = await import('../docs/completion.js');
  const program = buildProgram();
  cli.out(args[0] === 'zsh' ? zshCompletion(program) : bashCompletion(program));
  return 0;
}

/** Hidden `berth docs DIR`: writes the CLI reference, one page per command, from the command tree. */
export async function docs(cli: Cli, args: string[]): Promise<number> {
  const { buildProgram } = await import('../program.js');
  const { renderCliDocs } = await import('../docs/reference.js');
  const dir = args[0]!;
  const pages = renderCliDocs(buildProgram());
  await fsp.mkdir(dir, { recursive: true });
  for (const old of await fsp.readdir(dir)) if (old.endsWith('.md') && !pages.has(old)) await fsp.rm(join(dir, old));
  for (const [name, text] of pages) await fsp.writeFile(join(dir, name), text);
  cli.err(`wrote ${pages.size} pages to ${dir}\n`);
  return 0;
}
