import { Argument as CommanderArgument, Command, Option } from 'commander';
import type { Cli, Opts } from './context.js';
import { collect, createCli } from './context.js';

/**
 * The one source of berth's command tree: parsing, `--help`, docs/cli/*.md and shell completion
 * are all generated from what is declared here. Implementations load lazily (one module per
 * group), so `berth version` loads neither the daemon nor the image/registry code.
 */

type Action = (cli: Cli, args: string[], opts: Opts) => Promise<number | void>;
type ActionModule = Record<string, unknown>;

const modules: Record<string, () => Promise<ActionModule>> = {
  container: () => import('./commands/container.js'),
  run: () => import('./commands/run.js'),
  image: () => import('./commands/image.js'),
  system: () => import('./commands/system.js'),
  network: () => import('./commands/network.js'),
  volume: () => import('./commands/volume.js'),
  serve: () => import('./commands/serve.js'),
  meta: () => import('./commands/meta.js'),
};

export interface ProgramState {
  exitCode: number;
  cli?: Cli;
}

/**
 * Builds the command tree. With `only` (the first operand of the command line), just that
 * top-level command is built when it is one — the rest is never needed to run it.
 */
export function buildProgram(state: ProgramState = { exitCode: 0 }, only?: string): Command {
  const program = new Command('berth');
  program
    .description('A self-sufficient runtime for containers — docker-compatible commands against berthd')
    .usage('[OPTIONS] COMMAND')
    .option('-H, --host <url>', 'Daemon socket to connect to (unix:///run/berth/berth.sock, tcp://host:2376); also BERTH_HOST, DOCKER_HOST')
    .option('-D, --debug', 'Enable debug output')
    .option('-l, --log-level <level>', 'Set the logging level ("debug", "info", "warn", "error", "fatal")', 'info')
    .version('0.1.0', '-v, --version', 'Print version information and quit')
    .enablePositionalOptions()
    .showSuggestionAfterError(true)
    .configureHelp({ sortSubcommands: false });

  const act =
    (mod: string, fn: string) =>
    async (...argv: unknown[]): Promise<void> => {
      const cmd = argv[argv.length - 1] as Command;
      const opts = cmd.opts();
      const args = argv.slice(0, -2).flatMap((a) => (Array.isArray(a) ? (a as string[]) : a === undefined ? [] : [String(a)]));
      const host = program.opts().host as string | undefined;
      state.cli ??= createCli(host);
      const loaded = await modules[mod]!();
      const action = loaded[fn] as Action | undefined;
      if (!action) throw new Error(`internal: no action ${mod}.${fn}`);
      const code = await action(state.cli, args, opts);
      state.exitCode = typeof code === 'number' ? code : 0;
    };

  // ---------------- containers ----------------
  const ps = (c: Command): Command =>
    c
      .description('List containers')
      .option('-a, --all', 'Show all containers (default shows just running)')
      .option('-f, --filter <filter>', 'Filter output based on conditions provided', collect)
      .option('--format <string>', "Format output using a custom template: 'table', 'table TEMPLATE', 'json', 'TEMPLATE'")
      .option('-n, --last <int>', 'Show n last created containers (includes all states)', '-1')
      .option('-l, --latest', 'Show the latest created container (includes all states)')
      .option('--no-trunc', "Don't truncate output")
      .option('-q, --quiet', 'Only display container IDs')
      .option('-s, --size', 'Display total file sizes')
      .action(act('container', 'ps'));

  const run = (c: Command): Command =>
    createOptions(c.description('Create and run a new container from an image').argument('<image>').argument('[command...]'))
      .option('-d, --detach', 'Run container in background and print container ID')
      .option('--rm', 'Automatically remove the container and its associated anonymous volumes when it exits')
      .option('--detach-keys <string>', 'Override the key sequence for detaching a container', 'ctrl-p,ctrl-q')
      .option('--sig-proxy', 'Proxy received signals to the process', true)
      .option('--no-sig-proxy', 'Do not proxy received signals to the process')
      .passThroughOptions()
      .action(act('run', 'run'));

  const create = (c: Command): Command =>
    createOptions(c.description('Create a new container').argument('<image>').argument('[command...]')).passThroughOptions().action(act('run', 'create'));

  const start = (c: Command): Command =>
    c
      .description('Start one or more stopped containers')
      .argument('<container...>')
      .option('-a, --attach', "Attach STDOUT/STDERR and forward signals")
      .option('-i, --interactive', "Attach container's STDIN")
      .option('--detach-keys <string>', 'Override the key sequence for detaching a container', 'ctrl-p,ctrl-q')
      .action(act('run', 'start'));

  const stopLike = (c: Command, what: string, fn: string): Command =>
    c
      .description(what)
      .argument('<container...>')
      .option('-s, --signal <string>', 'Signal to send to the container')
      .option('-t, --time <int>', 'Seconds to wait before killing the container')
      .action(act('container', fn));

  const kill = (c: Command): Command =>
    c.description('Kill one or more running containers').argument('<container...>').option('-s, --signal <string>', 'Signal to send to the container').action(act('container', 'kill'));

  const rm = (c: Command): Command =>
    c
      .description('Remove one or more containers')
      .argument('<container...>')
      .option('-f, --force', 'Force the removal of a running container (uses SIGKILL)')
      .option('-l, --link', 'Remove the specified link')
      .option('-v, --volumes', 'Remove anonymous volumes associated with the container')
      .action(act('container', 'rm'));

  const logs = (c: Command): Command =>
    c
      .description('Fetch the logs of a container')
      .argument('<container>')
      .option('--details', 'Show extra details provided to logs')
      .option('-f, --follow', 'Follow log output')
      .option('--since <string>', 'Show logs since timestamp (e.g. "2013-01-02T13:23:37Z") or relative (e.g. "42m" for 42 minutes)')
      .option('-n, --tail <string>', 'Number of lines to show from the end of the logs', 'all')
      .option('-t, --timestamps', 'Show timestamps')
      .option('--until <string>', 'Show logs before a timestamp or relative (e.g. "42m")')
      .action(act('container', 'logs'));

  const exec = (c: Command): Command =>
    c
      .description('Execute a command in a running container')
      .argument('<container>')
      .argument('<command...>')
      .option('-d, --detach', 'Detached mode: run command in the background')
      .option('--detach-keys <string>', 'Override the key sequence for detaching a container')
      .option('-e, --env <list>', 'Set environment variables', collect)
      .option('--env-file <list>', 'Read in a file of environment variables', collect)
      .option('-i, --interactive', 'Keep STDIN open even if not attached')
      .option('--privileged', 'Give extended privileges to the command')
      .option('-t, --tty', 'Allocate a pseudo-TTY')
      .option('-u, --user <string>', 'Username or UID (format: "<name|uid>[:<group|gid>]")')
      .option('-w, --workdir <string>', 'Working directory inside the container')
      .passThroughOptions()
      .action(act('run', 'exec'));

  const attach = (c: Command): Command =>
    c
      .description("Attach local standard input, output, and error streams to a running container")
      .argument('<container>')
      .option('--detach-keys <string>', 'Override the key sequence for detaching a container', 'ctrl-p,ctrl-q')
      .option('--no-stdin', 'Do not attach STDIN')
      .option('--sig-proxy', 'Proxy all received signals to the process', true)
      .action(act('run', 'attach'));

  const cp = (c: Command): Command =>
    c
      .description('Copy files/folders between a container and the local filesystem')
      .argument('<src>', 'CONTAINER:SRC_PATH, a local path, or - (a tar on stdin)')
      .argument('<dest>', 'CONTAINER:DEST_PATH, a local path, or - (a tar on stdout)')
      .option('-a, --archive', 'Archive mode (copy all uid/gid information)')
      .option('-L, --follow-link', 'Always follow symbol link in SRC_PATH')
      .option('-q, --quiet', 'Suppress progress output during copy')
      .action(act('container', 'cp'));

  const inspect = (c: Command): Command =>
    c
      .description('Return low-level information on Docker objects')
      .argument('<name...>')
      .option('-f, --format <string>', 'Format output using a custom template')
      .option('-s, --size', 'Display total file sizes if the type is container')
      .option('--type <string>', 'Only inspect objects of the given type (container, image, network, volume)')
      .action(act('container', 'inspect'));

  const simple = (c: Command, description: string, fn: string, arg = '<container...>'): Command => c.description(description).argument(arg).action(act('container', fn));

  const top = (c: Command): Command => c.description('Display the running processes of a container').argument('<container>').argument('[ps_options...]').action(act('container', 'top'));
  const stats = (c: Command): Command =>
    c
      .description('Display a live stream of container(s) resource usage statistics')
      .argument('[container...]')
      .option('-a, --all', 'Show all containers (default shows just running)')
      .option('--format <string>', 'Format output using a custom template')
      .option('--no-stream', 'Disable streaming stats and only pull the first result')
      .option('--no-trunc', 'Do not truncate output')
      .action(act('container', 'stats'));
  const wait = (c: Command): Command => simple(c, 'Block until one or more containers stop, then print their exit codes', 'wait');
  const pause = (c: Command): Command => simple(c, 'Pause all processes within one or more containers', 'pause');
  const unpause = (c: Command): Command => simple(c, 'Unpause all processes within one or more containers', 'unpause');
  const rename = (c: Command): Command => c.description('Rename a container').argument('<container>').argument('<new-name>').action(act('container', 'rename'));
  const update = (c: Command): Command =>
    c
      .description('Update configuration of one or more containers')
      .argument('<container...>')
      .option('--cpus <decimal>', 'Number of CPUs')
      .option('--cpu-shares <int>', 'CPU shares (relative weight)')
      .option('-m, --memory <bytes>', 'Memory limit')
      .option('--memory-swap <bytes>', 'Swap limit equal to memory plus swap: -1 to enable unlimited swap')
      .option('--pids-limit <int>', 'Tune container pids limit (set -1 for unlimited)')
      .option('--restart <string>', 'Restart policy to apply when a container exits')
      .action(act('container', 'update'));
  const port = (c: Command): Command => c.description('List port mappings or a specific mapping for the container').argument('<container>').argument('[private-port]').action(act('container', 'port'));
  const commit = (c: Command): Command =>
    c
      .description("Create a new image from a container's changes")
      .argument('<container>')
      .argument('[repository]')
      .option('-a, --author <string>', 'Author (e.g., "John Hannibal Smith <hannibal@a-team.com>")')
      .option('-c, --change <list>', 'Apply Dockerfile instruction to the created image', collect)
      .option('-m, --message <string>', 'Commit message')
      .option('-p, --pause', 'Pause container during commit', true)
      .option('--no-pause', 'Do not pause the container during commit')
      .action(act('container', 'commit'));
  const diff = (c: Command): Command => c.description("Inspect changes to files or directories on a container's filesystem").argument('<container>').action(act('container', 'diff'));
  const exportCmd = (c: Command): Command =>
    c.description("Export a container's filesystem as a tar archive").argument('<container>').option('-o, --output <string>', 'Write to a file, instead of STDOUT').action(act('container', 'exportContainer'));
  const prune = (c: Command, what: string, mod: string): Command =>
    c
      .description(`Remove ${what}`)
      .option('-f, --force', 'Do not prompt for confirmation')
      .option('--filter <filter>', 'Provide filter values (e.g. "until=<timestamp>")', collect)
      .action(act(mod, 'prune'));

  // ---------------- images ----------------
  const images = (c: Command): Command =>
    c
      .description('List images')
      .argument('[repository]')
      .option('-a, --all', 'Show all images (default hides intermediate images)')
      .option('--digests', 'Show digests')
      .option('-f, --filter <filter>', 'Filter output based on conditions provided', collect)
      .option('--format <string>', "Format output using a custom template: 'table', 'table TEMPLATE', 'json', 'TEMPLATE'")
      .option('--no-trunc', "Don't truncate output")
      .option('-q, --quiet', 'Only show image IDs')
      .action(act('image', 'images'));
  const pull = (c: Command): Command =>
    c
      .description('Download an image from a registry')
      .argument('<name>', 'NAME[:TAG|@DIGEST]')
      .option('-a, --all-tags', 'Download all tagged images in the repository')
      .option('--platform <string>', 'Set platform if server is multi-platform capable')
      .option('-q, --quiet', 'Suppress verbose output')
      .action(act('image', 'pull'));
  const push = (c: Command): Command =>
    c
      .description('Upload an image to a registry')
      .argument('<name>', 'NAME[:TAG]')
      .option('-a, --all-tags', 'Push all tags of an image to the repository')
      .option('-q, --quiet', 'Suppress verbose output')
      .action(act('image', 'push'));
  const build = (c: Command): Command =>
    c
      .description('Build an image from a Dockerfile')
      .argument('<path>', 'PATH (a directory) or - (a tar context on stdin)')
      .option('--build-arg <list>', 'Set build-time variables', collect)
      .option('--cache-from <strings>', 'Images to consider as cache sources', collect)
      .option('-f, --file <string>', "Name of the Dockerfile (default: 'PATH/Dockerfile')")
      .option('--force-rm', 'Always remove intermediate containers')
      .option('--iidfile <string>', 'Write the image ID to the file')
      .option('--label <list>', 'Set metadata for an image', collect)
      .option('--network <string>', 'Set the networking mode for the RUN instructions during build')
      .option('--no-cache', 'Do not use cache when building the image')
      .option('--platform <string>', 'Set platform if server is multi-platform capable')
      .option('--pull', 'Always attempt to pull a newer version of the image')
      .option('-q, --quiet', 'Suppress the build output and print image ID on success')
      .option('--rm', 'Remove intermediate containers after a successful build', true)
      .option('-t, --tag <list>', 'Name and optionally a tag in the "name:tag" format', collect)
      .option('--target <string>', 'Set the target build stage to build')
      .action(act('image', 'build'));
  const tag = (c: Command): Command => c.description('Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE').argument('<source>').argument('<target>').action(act('image', 'tag'));
  const rmi = (c: Command): Command =>
    c
      .description('Remove one or more images')
      .argument('<image...>')
      .option('-f, --force', 'Force removal of the image')
      .option('--no-prune', 'Do not delete untagged parents')
      .action(act('image', 'rmi'));
  const save = (c: Command): Command =>
    c.description('Save one or more images to a tar archive (streamed to STDOUT by default)').argument('<image...>').option('-o, --output <string>', 'Write to a file, instead of STDOUT').action(act('image', 'save'));
  const load = (c: Command): Command =>
    c
      .description('Load an image from a tar archive or STDIN')
      .option('-i, --input <string>', 'Read from tar archive file, instead of STDIN')
      .option('-q, --quiet', 'Suppress the load output')
      .action(act('image', 'load'));
  const importCmd = (c: Command): Command =>
    c
      .description('Import the contents from a tarball to create a filesystem image')
      .argument('<file>', 'file|URL|- ')
      .argument('[repository]')
      .option('-c, --change <list>', 'Apply Dockerfile instruction to the created image', collect)
      .option('-m, --message <string>', 'Set commit message for imported image')
      .option('--platform <string>', 'Set platform if server is multi-platform capable')
      .action(act('image', 'importImage'));
  const history = (c: Command): Command =>
    c
      .description('Show the history of an image')
      .argument('<image>')
      .option('--format <string>', 'Format output using a custom template')
      .option('-H, --human', 'Print sizes and dates in human readable format', true)
      .option('--no-trunc', "Don't truncate output")
      .option('-q, --quiet', 'Only show image IDs')
      .action(act('image', 'history'));

  // ---------------- top level, docker's order ----------------
  // Top-level commands are registered on demand: `berth ps` builds only `ps` (commander spends
  // most of a short command's start building options); help and unknown names build them all.
  const topLevel: [string, () => void][] = [
    ['run', () => {
      run(program.command('run').usage('[OPTIONS] IMAGE [COMMAND] [ARG...]'));
    }],
    ['exec', () => {
      exec(program.command('exec').usage('[OPTIONS] CONTAINER COMMAND [ARG...]'));
    }],
    ['ps', () => {
      ps(program.command('ps').usage('[OPTIONS]'));
    }],
    ['build', () => {
      build(program.command('build').usage('[OPTIONS] PATH | -'));
    }],
    ['pull', () => {
      pull(program.command('pull').usage('[OPTIONS] NAME[:TAG|@DIGEST]'));
    }],
    ['push', () => {
      push(program.command('push').usage('[OPTIONS] NAME[:TAG]'));
    }],
    ['images', () => {
      images(program.command('images').usage('[OPTIONS] [REPOSITORY[:TAG]]'));
    }],
    ['login', () => {
      program
        .command('login')
        .description('Authenticate to a registry')
        .argument('[server]')
        .option('-p, --password <string>', 'Password')
        .option('--password-stdin', 'Take the password from stdin')
        .option('-u, --username <string>', 'Username')
        .action(act('system', 'login'));
    }],
    ['logout', () => {
      program.command('logout').description('Log out from a registry').argument('[server]').action(act('system', 'logout'));
    }],
    ['version', () => {
      program.command('version').description('Show the berth version information').option('-f, --format <string>', 'Format output using a custom template').action(act('meta', 'version'));
    }],
    ['info', () => {
      program.command('info').description('Display system-wide information').option('-f, --format <string>', 'Format output using a custom template').action(act('system', 'info'));
    }],
    ['attach', () => {
      attach(program.command('attach'));
    }],
    ['commit', () => {
      commit(program.command('commit'));
    }],
    ['cp', () => {
      cp(program.command('cp'));
    }],
    ['create', () => {
      create(program.command('create').usage('[OPTIONS] IMAGE [COMMAND] [ARG...]'));
    }],
    ['diff', () => {
      diff(program.command('diff'));
    }],
    ['events', () => {
      program
        .command('events')
        .description('Get real time events from the server')
        .option('-f, --filter <filter>', 'Filter output based on conditions provided', collect)
        .option('--format <string>', 'Format output using a custom template')
        .option('--since <string>', 'Show all events created since timestamp')
        .option('--until <string>', 'Stream events until this timestamp')
        .action(act('system', 'events'));
    }],
    ['export', () => {
      exportCmd(program.command('export'));
    }],
    ['history', () => {
      history(program.command('history'));
    }],
    ['import', () => {
      importCmd(program.command('import'));
    }],
    ['inspect', () => {
      inspect(program.command('inspect'));
    }],
    ['kill', () => {
      kill(program.command('kill'));
    }],
    ['load', () => {
      load(program.command('load'));
    }],
    ['logs', () => {
      logs(program.command('logs'));
    }],
    ['pause', () => {
      pause(program.command('pause'));
    }],
    ['port', () => {
      port(program.command('port'));
    }],
    ['rename', () => {
      rename(program.command('rename'));
    }],
    ['restart', () => {
      stopLike(program.command('restart'), 'Restart one or more containers', 'restart');
    }],
    ['rm', () => {
      rm(program.command('rm'));
    }],
    ['rmi', () => {
      rmi(program.command('rmi'));
    }],
    ['save', () => {
      save(program.command('save'));
    }],
    ['start', () => {
      start(program.command('start'));
    }],
    ['stats', () => {
      stats(program.command('stats'));
    }],
    ['stop', () => {
      stopLike(program.command('stop'), 'Stop one or more running containers', 'stop');
    }],
    ['tag', () => {
      tag(program.command('tag'));
    }],
    ['top', () => {
      top(program.command('top'));
    }],
    ['unpause', () => {
      unpause(program.command('unpause'));
    }],
    ['update', () => {
      update(program.command('update'));
    }],
    ['wait', () => {
      wait(program.command('wait'));
    }],
    // ---------------- management commands ----------------
    ['container', () => {
      const container = program.command('container').description('Manage containers');
      attach(container.command('attach'));
      commit(container.command('commit'));
      cp(container.command('cp'));
      create(container.command('create'));
      diff(container.command('diff'));
      exec(container.command('exec'));
      exportCmd(container.command('export'));
      inspect(container.command('inspect'));
      kill(container.command('kill'));
      logs(container.command('logs'));
      ps(container.command('ls').aliases(['ps', 'list']));
      pause(container.command('pause'));
      port(container.command('port'));
      prune(container.command('prune'), 'all stopped containers', 'container');
      rename(container.command('rename'));
      stopLike(container.command('restart'), 'Restart one or more containers', 'restart');
      rm(container.command('rm').aliases(['remove']));
      run(container.command('run'));
      start(container.command('start'));
      stats(container.command('stats'));
      stopLike(container.command('stop'), 'Stop one or more running containers', 'stop');
      top(container.command('top'));
      unpause(container.command('unpause'));
      update(container.command('update'));
      wait(container.command('wait'));
    }],
    ['image', () => {
      const image = program.command('image').description('Manage images');
      build(image.command('build'));
      history(image.command('history'));
      importCmd(image.command('import'));
      inspect(image.command('inspect'));
      load(image.command('load'));
      images(image.command('ls').aliases(['list']));
      prune(image.command('prune').option('-a, --all', 'Remove all unused images, not just dangling ones'), 'unused images', 'image');
      pull(image.command('pull'));
      push(image.command('push'));
      rmi(image.command('rm').aliases(['remove']));
      save(image.command('save'));
      tag(image.command('tag'));
    }],
    ['network', () => {
      const network = program.command('network').description('Manage networks');
      network
        .command('connect')
        .description('Connect a container to a network')
        .argument('<network>')
        .argument('<container>')
        .option('--alias <strings>', 'Add network-scoped alias for the container', collect)
        .option('--ip <string>', 'IPv4 address (e.g., "172.30.100.104")')
        .action(act('network', 'connect'));
      network
        .command('create')
        .description('Create a network')
        .argument('<network>')
        .option('-d, --driver <string>', 'Driver to manage the Network', 'bridge')
        .option('--gateway <strings>', 'IPv4 or IPv6 Gateway for the master subnet', collect)
        .option('--internal', 'Restrict external access to the network')
        .option('--attachable', 'Enable manual container attachment')
        .option('--ipv6', 'Enable or disable IPv6 networking')
        .option('--ip-range <strings>', 'Allocate container ip from a sub-range', collect)
        .option('--label <list>', 'Set metadata on a network', collect)
        .option('-o, --opt <map>', 'Set driver specific options', collect)
        .option('--subnet <strings>', 'Subnet in CIDR format that represents a network segment', collect)
        .action(act('network', 'create'));
      network
        .command('disconnect')
        .description('Disconnect a container from a network')
        .argument('<network>')
        .argument('<container>')
        .option('-f, --force', 'Force the container to disconnect from a network')
        .action(act('network', 'disconnect'));
      network
        .command('inspect')
        .description('Display detailed information on one or more networks')
        .argument('<network...>')
        .option('-f, --format <string>', 'Format output using a custom template')
        .action(act('network', 'inspect'));
      network
        .command('ls')
        .aliases(['list'])
        .description('List networks')
        .option('-f, --filter <filter>', 'Provide filter values (e.g. "driver=bridge")', collect)
        .option('--format <string>', 'Format output using a custom template')
        .option('--no-trunc', 'Do not truncate the output')
        .option('-q, --quiet', 'Only display network IDs')
        .action(act('network', 'ls'));
      prune(network.command('prune'), 'all unused networks', 'network');
      network.command('rm').aliases(['remove']).description('Remove one or more networks').argument('<network...>').option('-f, --force', 'Do not error if the network does not exist').action(act('network', 'rm'));
    }],
    ['volume', () => {
      const volume = program.command('volume').description('Manage volumes');
      volume
        .command('create')
        .description('Create a volume')
        .argument('[volume]')
        .option('-d, --driver <string>', 'Specify volume driver name', 'local')
        .option('--label <list>', 'Set metadata for a volume', collect)
        .option('-o, --opt <map>', 'Set driver specific options', collect)
        .action(act('volume', 'create'));
      volume.command('inspect').description('Display detailed information on one or more volumes').argument('<volume...>').option('-f, --format <string>', 'Format output using a custom template').action(act('volume', 'inspect'));
      volume
        .command('ls')
        .aliases(['list'])
        .description('List volumes')
        .option('-f, --filter <filter>', "Provide filter values (e.g. 'dangling=true')", collect)
        .option('--format <string>', 'Format output using a custom template')
        .option('-q, --quiet', 'Only display volume names')
        .action(act('volume', 'ls'));
      prune(volume.command('prune').option('-a, --all', 'Remove all unused volumes, not just anonymous ones'), 'unused local volumes', 'volume');
      volume.command('rm').aliases(['remove']).description('Remove one or more volumes').argument('<volume...>').option('-f, --force', 'Force the removal of one or more volumes').action(act('volume', 'rm'));
      volume
        .command('export')
        .description("Write a volume's contents as a tar archive (to STDOUT by default)")
        .argument('<volume>')
        .option('-o, --output <string>', 'Write to a file, instead of STDOUT')
        .option('--image <string>', 'A local image for the helper container that mounts the volume (never started)', 'busybox')
        .action(act('volume', 'exportVolume'));
      volume
        .command('import')
        .description('Fill a volume from a tar archive (from STDIN by default); creates the volume if needed')
        .argument('<volume>')
        .argument('[file]')
        .option('--image <string>', 'A local image for the helper container that mounts the volume (never started)', 'busybox')
        .action(act('volume', 'importVolume'));
    }],
    ['system', () => {
      const system = program.command('system').description('Manage berth');
      system
        .command('df')
        .description('Show docker disk usage')
        .option('--format <string>', 'Format output using a custom template')
        .option('-v, --verbose', 'Show detailed information on space usage')
        .action(act('system', 'df'));
      system
        .command('events')
        .description('Get real time events from the server')
        .option('-f, --filter <filter>', 'Filter output based on conditions provided', collect)
        .option('--format <string>', 'Format output using a custom template')
        .option('--since <string>', 'Show all events created since timestamp')
        .option('--until <string>', 'Stream events until this timestamp')
        .action(act('system', 'events'));
      system.command('info').description('Display system-wide information').option('-f, --format <string>', 'Format output using a custom template').action(act('system', 'info'));
      system
        .command('prune')
        .description('Remove unused data')
        .option('-a, --all', 'Remove all unused images not just dangling ones')
        .option('--filter <filter>', 'Provide filter values (e.g. "label=<key>=<value>")', collect)
        .option('-f, --force', 'Do not prompt for confirmation')
        .option('--volumes', 'Prune anonymous volumes')
        .action(act('system', 'prune'));
    }],
    // ---------------- berth's own ----------------
    ['daemon', () => {
      program
        .command('daemon')
        .description('Run berthd, the Docker Engine API server, in the foreground (flags: berthd --help)')
        .helpOption(false)
        .allowUnknownOption(true)
        .allowExcessArguments(true)
        .argument('[flags...]')
        .passThroughOptions()
        .action(act('serve', 'daemon'));
    }],
    ['registry', () => {
      const registry = program.command('registry').description('Run a private OCI registry');
      registry
        .command('serve')
        .description('Serve an OCI distribution registry from a directory')
        .option('--addr <host:port>', 'Address to listen on', '127.0.0.1:5000')
        .requiredOption('--root <dir>', 'Directory holding the registry content')
        .option('--htpasswd <file>', 'htpasswd file (bcrypt) enabling basic auth')
        .option('--tls-cert <file>', 'TLS certificate (PEM)')
        .option('--tls-key <file>', 'TLS private key (PEM)')
        .action(act('serve', 'registry'));
    }],
    ['completion', () => {
      program
        .command('completion')
        .description('Generate the autocompletion script for the specified shell')
        .addArgument(new CommanderArgument('<shell>', 'bash or zsh').choices(['bash', 'zsh']))
        .action(act('meta', 'completion'));
    }],
    ['docs', () => {
      program
        .command('docs', { hidden: true })
        .description('Write the CLI reference (docs/cli/*.md) from this command tree')
        .argument('<dir>')
        .action(act('meta', 'docs'));
    }],
  ];
  const known = only !== undefined && topLevel.some(([name]) => name === only);
  for (const [name, register] of topLevel) if (!known || name === only) register();

  return program;
}


/** Options shared by `run` and `create` (docker's container flags). */
function createOptions(c: Command): Command {
  return c
    // -h is --hostname here, as in docker run.
    .helpOption('--help', 'Print usage')
    .option('--add-host <list>', 'Add a custom host-to-IP mapping (host:ip)', collect)
    .option('-a, --attach <list>', 'Attach to STDIN, STDOUT or STDERR', collect)
    .option('--cap-add <list>', 'Add Linux capabilities', collect)
    .option('--cap-drop <list>', 'Drop Linux capabilities', collect)
    .option('--cidfile <string>', 'Write the container ID to the file')
    .option('--cpu-shares <int>', 'CPU shares (relative weight)')
    .option('--cpus <decimal>', 'Number of CPUs')
    .option('--dns <list>', 'Set custom DNS servers', collect)
    .option('-e, --env <list>', 'Set environment variables', collect)
    .option('--env-file <list>', 'Read in a file of environment variables', collect)
    .option('--entrypoint <string>', 'Overwrite the default ENTRYPOINT of the image')
    .option('--expose <list>', 'Expose a port or a range of ports', collect)
    .option('--group-add <list>', 'Add additional groups to join', collect)
    .option('--health-cmd <string>', 'Command to run to check health')
    .option('--health-interval <duration>', 'Time between running the check (ms|s|m|h)')
    .option('--health-retries <int>', 'Consecutive failures needed to report unhealthy')
    .option('--health-timeout <duration>', 'Maximum time to allow one check to run (ms|s|m|h)')
    .option('--health-start-period <duration>', 'Start period for the container to initialize before starting health-retries countdown')
    .option('--no-healthcheck', 'Disable any container-specified HEALTHCHECK')
    .option('-h, --hostname <string>', 'Container host name')
    .option('--init', 'Run an init inside the container that forwards signals and reaps processes')
    .option('-i, --interactive', 'Keep STDIN open even if not attached')
    .option('--ipc <string>', 'IPC mode to use')
    .option('-l, --label <list>', 'Set meta data on a container', collect)
    .option('--log-driver <string>', 'Logging driver for the container')
    .option('--log-opt <list>', 'Log driver options', collect)
    .option('-m, --memory <bytes>', 'Memory limit')
    .option('--memory-swap <bytes>', "Swap limit equal to memory plus swap: '-1' to enable unlimited swap")
    .option('--mount <mount>', 'Attach a filesystem mount to the container', collect)
    .option('--name <string>', 'Assign a name to the container')
    .option('--network <network>', 'Connect a container to a network')
    .option('--net <network>', 'Connect a container to a network (alias of --network)')
    .option('--network-alias <list>', 'Add network-scoped alias for the container', collect)
    .option('--pid <string>', 'PID namespace to use')
    .option('--pids-limit <int>', 'Tune container pids limit (set -1 for unlimited)')
    .option('--platform <string>', 'Set platform if server is multi-platform capable')
    .option('--privileged', 'Give extended privileges to this container')
    .option('-p, --publish <list>', "Publish a container's port(s) to the host", collect)
    .option('-P, --publish-all', 'Publish all exposed ports to random ports')
    .addOption(new Option('--pull <string>', 'Pull image before running').choices(['always', 'missing', 'never']).default('missing'))
    .option('-q, --quiet', 'Suppress the pull output')
    .option('--read-only', "Mount the container's root filesystem as read only")
    .option('--restart <string>', 'Restart policy to apply when a container exits', 'no')
    .option('--runtime <string>', 'Runtime to use for this container')
    .option('--security-opt <list>', 'Security Options', collect)
    .option('--shm-size <bytes>', 'Size of /dev/shm')
    .option('--stop-signal <string>', 'Signal to stop the container')
    .option('--stop-timeout <int>', 'Timeout (in seconds) to stop a container')
    .option('--sysctl <map>', 'Sysctl options', collect)
    .option('--tmpfs <list>', 'Mount a tmpfs directory', collect)
    .option('-t, --tty', 'Allocate a pseudo-TTY')
    .option('--ulimit <ulimit>', 'Ulimit options', collect)
    .option('-u, --user <string>', 'Username or UID (format: <name|uid>[:<group|gid>])')
    .option('--userns <string>', 'User namespace to use')
    .option('--uts <string>', 'UTS namespace to use')
    .option('-v, --volume <list>', 'Bind mount a volume', collect)
    .option('--volumes-from <list>', 'Mount volumes from the specified container(s)', collect)
    .option('-w, --workdir <string>', 'Working directory inside the container');
}
