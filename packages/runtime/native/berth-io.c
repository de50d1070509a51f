/*
 * berth-io: the small native helper of @berth/runtime, for the two things Node cannot do itself.
 *
 *   berth-io attach [-i] <dir> <name>
 *       Connects to conmon's attach socket <dir>/<name> (SOCK_SEQPACKET; reached through
 *       /proc/self/fd/N so long paths work) and relays: stdin -> socket (only with -i; EOF on stdin
 *       becomes shutdown(SHUT_WR), which conmon turns into EOF on the container's stdin when it runs
 *       without --leave-stdin-open); socket -> stdout/stderr by the stream byte conmon prefixes
 *       (2 = stdout, 3 = stderr). Exits 0 when conmon closes the socket.
 *
 *   berth-io console <socket-path> <pid-file> -- <command...>
 *       Becomes a child subreaper, listens on a unix socket, runs <command> (`runc exec -d -t
 *       --console-socket <socket-path> --pid-file <pid-file> ...`: runc only hands a pty to a
 *       detached process), receives the pty master by SCM_RIGHTS, relays stdin -> pty and
 *       pty -> stdout, reads resize requests ("<rows> <cols>\n") on fd 3, and — the detached
 *       process being reparented to this subreaper — reaps it and exits with its status
 *       (128+signal when killed). Exits with runc's status when runc fails.
 *
 *   berth-io mount <type> <source> <target> <options>
 *       mount(2) without util-linux's mount (a dynamically linked program that reads mountinfo and
 *       utab: several ms per container). <options> is comma-separated: the usual flag words (ro,
 *       nosuid, nodev, noexec, relatime, ...), bind/rbind (a bind mount, remounted for flags), a
 *       propagation word (private, rslave, ...); anything else is the filesystem's data
 *       (lowerdir=..., upperdir=..., size=...). Type "bind" is a bind mount of <source>.
 *
 *   berth-io serve
 *       The above (and process launches) as requests on stdin; see serve() below.
 *
 *   berth-io umount <target>
 *       Unmounts everything stacked on <target> (lazily when busy) and prints how many mounts it
 *       took off. Exits 0 once <target> is not a mount point (or does not exist).
 *
 * No allocation beyond the stack; every fd except 0-3 is close-on-exec.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#define BUF 32768

static int write_all(int fd, const char *buf, ssize_t len)
{
	while (len > 0) {
		ssize_t n = write(fd, buf, len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN) {
				struct pollfd p = {fd, POLLOUT, 0};
				poll(&p, 1, -1);
				continue;
			}
			return -1;
		}
		buf += n;
		len -= n;
	}
	return 0;
}

static int attach(int with_stdin, const char *dir, const char *name)
{
	int dfd = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0) {
		fprintf(stderr, "berth-io: open %s: %s\n", dir, strerror(errno));
		return 125;
	}
	struct sockaddr_un addr = {.sun_family = AF_UNIX};
	snprintf(addr.sun_path, sizeof(addr.sun_path), "/proc/self/fd/%d/%s", dfd, name);
	int s = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	if (s < 0 || connect(s, (struct sockaddr *)&addr, sizeof(addr)) < 0) {
		fprintf(stderr, "berth-io: connect %s/%s: %s\n", dir, name, strerror(errno));
		return 125;
	}
	/* Tell the parent we are connected: output from now on reaches us. */
	if (fcntl(3, F_GETFD) >= 0) {
		(void)write(3, "ok\n", 3);
		close(3);
	}
	char buf[BUF + 1];
	int in_open = with_stdin;
	for (;;) {
		struct pollfd p[2] = {{s, POLLIN, 0}, {in_open ? 0 : -1, POLLIN, 0}};
		if (poll(p, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			return 125;
		}
		if (p[0].revents & (POLLIN | POLLHUP | POLLERR)) {
			ssize_t n = recv(s, buf, sizeof(buf), 0);
			if (n < 0 && errno == EINTR)
				continue;
			if (n <= 0)
				return 0;
			int out = buf[0] == 3 ? 2 : 1;
			if (n > 1 && write_all(out, buf + 1, n - 1) < 0)
				return 0;
		}
		if (in_open && (p[1].revents & (POLLIN | POLLHUP | POLLERR))) {
			ssize_t n = read(0, buf, BUF);
			if (n < 0 && errno == EINTR)
				continue;
			if (n <= 0) {
				shutdown(s, SHUT_WR);
				in_open = 0;
				continue;
			}
			if (send(s, buf, n, MSG_NOSIGNAL) < 0) {
				in_open = 0;
			}
		}
	}
}

static int recv_fd(int conn)
{
	char name[4096];
	char ctrl[CMSG_SPACE(sizeof(int))];
	struct iovec iov = {name, sizeof(name)};
	struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctrl, .msg_controllen = sizeof(ctrl)};
	if (recvmsg(conn, &msg, MSG_CMSG_CLOEXEC) < 0)
		return -1;
	struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
	if (!c || c->cmsg_type != SCM_RIGHTS)
		return -1;
	int fd;
	memcpy(&fd, CMSG_DATA(c), sizeof(int));
	return fd;
}

static int console(const char *sock_path, const char *pid_file, char **argv)
{
	prctl(PR_SET_CHILD_SUBREAPER, 1);
	int l = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_un addr = {.sun_family = AF_UNIX};
	if (strlen(sock_path) >= sizeof(addr.sun_path)) {
		fprintf(stderr, "berth-io: socket path too long: %s\n", sock_path);
		return 125;
	}
	strcpy(addr.sun_path, sock_path);
	unlink(sock_path);
	if (l < 0 || bind(l, (struct sockaddr *)&addr, sizeof(addr)) < 0 || listen(l, 1) < 0) {
		fprintf(stderr, "berth-io: listen %s: %s\n", sock_path, strerror(errno));
		return 125;
	}
	pid_t pid = fork();
	if (pid < 0)
		return 125;
	if (pid == 0) {
		close(3);
		execvp(argv[0], argv);
		fprintf(stderr, "berth-io: exec %s: %s\n", argv[0], strerror(errno));
		_exit(127);
	}
	int master = -1;
	int status = 0;
	int exited = 0;
	/* Wait for the pty or for the command to fail before sending it. */
	for (;;) {
		struct pollfd p = {l, POLLIN, 0};
		int r = poll(&p, 1, 100);
		if (r > 0) {
			int conn = accept4(l, NULL, NULL, SOCK_CLOEXEC);
			if (conn >= 0) {
				master = recv_fd(conn);
				close(conn);
			}
			break;
		}
		if (waitpid(pid, &status, WNOHANG) == pid) {
			exited = 1;
			break;
		}
	}
	close(l);
	unlink(sock_path);
	if (master < 0) {
		if (!exited)
			waitpid(pid, &status, 0);
		return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
	}
	char buf[BUF];
	char ctl[256];
	size_t ctl_len = 0;
	int in_open = 1, ctl_open = fcntl(3, F_GETFD) >= 0;
	for (;;) {
		struct pollfd p[3] = {{master, POLLIN, 0}, {in_open ? 0 : -1, POLLIN, 0}, {ctl_open ? 3 : -1, POLLIN, 0}};
		if (poll(p, 3, -1) < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		if (p[0].revents & (POLLIN | POLLHUP | POLLERR)) {
			ssize_t n = read(master, buf, sizeof(buf));
			if (n < 0 && errno == EINTR)
				continue;
			if (n <= 0)
				break; /* EIO: every slave fd closed, the process is gone */
			if (write_all(1, buf, n) < 0)
				break;
		}
		if (in_open && (p[1].revents & (POLLIN | POLLHUP | POLLERR))) {
			ssize_t n = read(0, buf, sizeof(buf));
			if (n <= 0) {
				/* EOF on a terminal is ^D */
				char eof = 4;
				(void)write(master, &eof, 1);
				in_open = 0;
			} else if (write_all(master, buf, n) < 0) {
				in_open = 0;
			}
		}
		if (ctl_open && (p[2].revents & (POLLIN | POLLHUP | POLLERR))) {
			ssize_t n = read(3, ctl + ctl_len, sizeof(ctl) - 1 - ctl_len);
			if (n <= 0) {
				ctl_open = 0;
				continue;
			}
			ctl_len += n;
			ctl[ctl_len] = 0;
			char *nl;
			while ((nl = strchr(ctl, '\n'))) {
				unsigned rows, cols;
				*nl = 0;
				if (sscanf(ctl, "%u %u", &rows, &cols) == 2) {
					struct winsize ws = {.ws_row = rows, .ws_col = cols};
					ioctl(master, TIOCSWINSZ, &ws);
				}
				ctl_len -= (nl + 1 - ctl);
				memmove(ctl, nl + 1, ctl_len + 1);
			}
			if (ctl_len >= sizeof(ctl) - 1)
				ctl_len = 0;
		}
	}
	if (!exited)
		waitpid(pid, &status, 0);
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
		return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
	/* runc succeeded and detached: reap the exec'd process (and any orphan) until it is gone. */
	pid_t target = 0;
	FILE *f = fopen(pid_file, "r");
	if (f) {
		if (fscanf(f, "%d", &target) != 1)
			target = 0;
		fclose(f);
	}
	if (target <= 0)
		return 255;
	for (;;) {
		int st;
		pid_t r = waitpid(-1, &st, 0);
		if (r == target)
			return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
		if (r < 0 && errno == ECHILD) {
			/* not reparented to us: wait for it to disappear; its status is unknown */
			char proc[64];
			snprintf(proc, sizeof(proc), "/proc/%d", target);
			while (access(proc, F_OK) == 0)
				usleep(50000);
			return 255;
		}
	}
}

/* Messages of mount/umount: stderr for the commands, the reply line for `serve`. */
static char message[4096];

__attribute__((format(printf, 1, 2))) static void say(const char *fmt, ...)
{
	size_t len = strlen(message);
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(message + len, sizeof(message) - len, fmt, ap);
	va_end(ap);
}

struct mount_word {
	const char *name;
	unsigned long set;
	unsigned long clear;
	int propagation;
};

static const struct mount_word mount_words[] = {
	{"defaults", 0, 0, 0},
	{"ro", MS_RDONLY, 0, 0},
	{"rw", 0, MS_RDONLY, 0},
	{"nosuid", MS_NOSUID, 0, 0},
	{"suid", 0, MS_NOSUID, 0},
	{"nodev", MS_NODEV, 0, 0},
	{"dev", 0, MS_NODEV, 0},
	{"noexec", MS_NOEXEC, 0, 0},
	{"exec", 0, MS_NOEXEC, 0},
	{"sync", MS_SYNCHRONOUS, 0, 0},
	{"async", 0, MS_SYNCHRONOUS, 0},
	{"dirsync", MS_DIRSYNC, 0, 0},
	{"noatime", MS_NOATIME, 0, 0},
	{"atime", 0, MS_NOATIME, 0},
	{"nodiratime", MS_NODIRATIME, 0, 0},
	{"diratime", 0, MS_NODIRATIME, 0},
	{"relatime", MS_RELATIME, 0, 0},
	{"norelatime", 0, MS_RELATIME, 0},
	{"strictatime", MS_STRICTATIME, 0, 0},
	{"bind", MS_BIND, 0, 0},
	{"rbind", MS_BIND | MS_REC, 0, 0},
	{"private", MS_PRIVATE, 0, 1},
	{"rprivate", MS_PRIVATE | MS_REC, 0, 1},
	{"shared", MS_SHARED, 0, 1},
	{"rshared", MS_SHARED | MS_REC, 0, 1},
	{"slave", MS_SLAVE, 0, 1},
	{"rslave", MS_SLAVE | MS_REC, 0, 1},
	{"unbindable", MS_UNBINDABLE, 0, 1},
	{"runbindable", MS_UNBINDABLE | MS_REC, 0, 1},
};

static int do_mount(const char *type, const char *source, const char *target, const char *options)
{
	char opts[8192], data[8192];
	unsigned long flags = 0, propagation = 0;
	size_t data_len = 0;
	if (strlen(options) >= sizeof(opts)) {
		say("berth-io: mount %s: options too long\n", target);
		return 1;
	}
	strcpy(opts, options);
	data[0] = 0;
	for (char *save = NULL, *w = strtok_r(opts, ",", &save); w; w = strtok_r(NULL, ",", &save)) {
		size_t i, n = sizeof(mount_words) / sizeof(mount_words[0]);
		for (i = 0; i < n; i++)
			if (strcmp(w, mount_words[i].name) == 0)
				break;
		if (i < n) {
			if (mount_words[i].propagation) {
				propagation |= mount_words[i].set;
			} else {
				flags |= mount_words[i].set;
				flags &= ~mount_words[i].clear;
			}
			continue;
		}
		size_t len = strlen(w);
		if (data_len + len + 2 > sizeof(data)) {
			say("berth-io: mount %s: options too long\n", target);
			return 1;
		}
		if (data_len > 0)
			data[data_len++] = ',';
		memcpy(data + data_len, w, len + 1);
		data_len += len;
	}
	if (strcmp(type, "bind") == 0)
		flags |= MS_BIND;
	if (flags & MS_BIND) {
		if (mount(source, target, NULL, flags & (MS_BIND | MS_REC), NULL) < 0) {
			say("berth-io: mount --bind %s %s: %s\n", source, target, strerror(errno));
			return 1;
		}
		/* Flags other than the bind itself take a remount, as mount(8) does. */
		unsigned long rest = flags & ~(MS_BIND | MS_REC);
		if (rest && mount(NULL, target, NULL, MS_REMOUNT | MS_BIND | rest, NULL) < 0) {
			say("berth-io: remount %s: %s\n", target, strerror(errno));
			umount2(target, MNT_DETACH);
			return 1;
		}
	} else if (mount(source, target, type, flags, data_len > 0 ? data : NULL) < 0) {
		say("berth-io: mount -t %s %s %s: %s\n", type, source, target, strerror(errno));
		return 1;
	}
	if (propagation && mount(NULL, target, NULL, propagation, NULL) < 0) {
		say("berth-io: mount --make-* %s: %s\n", target, strerror(errno));
		umount2(target, MNT_DETACH);
		return 1;
	}
	return 0;
}

static int do_umount(const char *target)
{
	int count = 0;
	for (int i = 0; i < 256; i++) {
		if (umount2(target, UMOUNT_NOFOLLOW) == 0) {
			count++;
			continue;
		}
		/* EINVAL: not a mount point (any more); ENOENT: not there at all. */
		if (errno == EINVAL || errno == ENOENT) {
			say("%d\n", count);
			return 0;
		}
		if (errno == EBUSY && umount2(target, MNT_DETACH | UMOUNT_NOFOLLOW) == 0) {
			count++;
			continue;
		}
		say("berth-io: umount %s: %s\n", target, strerror(errno));
		return 1;
	}
	say("berth-io: umount %s: still mounted after 256 unmounts\n", target);
	return 1;
}


/*
 * `serve`: the operations above and process launches for a long-lived caller, without the caller
 * forking itself (a fork of a large process such as Node's costs milliseconds of page-table copying
 * and blocks its event loop). Requests on stdin, one per line, fields separated by tabs, with "\\",
 * "\t" and "\n" escaped as in C:
 *     <id> mount <type> <source> <target> <options>
 *     <id> umount <target>
 *     <id> launch <cwd> <stderr-file> <env-count> <env...> <program> <args...>
 * Replies on stdout, one line each (written whole, so lines of concurrent launches never mix):
 *     <id> <exit code> <escaped text>
 * mount and umount run inline and answer with their message (umount: the number of mounts taken
 * off). launch forks a worker that starts <program> in a new session with stdin and stdout on
 * /dev/null, stderr appended to <stderr-file>, the write end of a pipe as fd 3 (_OCI_SYNCPIPE, as
 * conmon expects), waits for the first line on that pipe (or EOF), reaps <program> when it has
 * exited, and answers with that line: code 0, or 127 when the exec failed. Exits at EOF on stdin.
 */
static void unescape(char *s)
{
	char *w = s;
	for (char *r = s; *r; r++) {
		if (*r == '\\' && r[1]) {
			r++;
			*w++ = *r == 't' ? '\t' : *r == 'n' ? '\n' : *r;
		} else {
			*w++ = *r;
		}
	}
	*w = 0;
}

static void reply(const char *id, int code, const char *text)
{
	char line[4000];
	int n = snprintf(line, sizeof(line), "%s\t%d\t", id, code);
	for (const char *t = text; *t && n < (int)sizeof(line) - 3; t++) {
		if (*t == '\\' || *t == '\t' || *t == '\n') {
			line[n++] = '\\';
			line[n++] = *t == '\t' ? 't' : *t == '\n' ? 'n' : '\\';
		} else {
			line[n++] = *t;
		}
	}
	line[n++] = '\n';
	(void)write_all(1, line, n);
}

static void launch(const char *id, char **f, int nf)
{
	/* f: cwd, stderr-file, env-count, env..., program, args... */
	if (nf < 4) {
		reply(id, 125, "launch: too few fields");
		return;
	}
	int nenv = atoi(f[2]);
	if (nenv < 0 || 3 + nenv >= nf) {
		reply(id, 125, "launch: bad env count");
		return;
	}
	char **envp = f + 3, **argv = f + 3 + nenv + 1;
	const char *program = f[3 + nenv];
	pid_t worker = fork();
	if (worker != 0) {
		if (worker < 0)
			reply(id, 125, strerror(errno));
		return;
	}
	signal(SIGCHLD, SIG_DFL);
	int p[2];
	if (pipe2(p, O_CLOEXEC) < 0)
		_exit(1);
	pid_t pid = fork();
	if (pid == 0) {
		setsid();
		int null = open("/dev/null", O_RDWR | O_CLOEXEC);
		int err = open(f[1], O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
		if (null < 0 || err < 0 || dup2(null, 0) < 0 || dup2(null, 1) < 0 || dup2(err, 2) < 0 || dup2(p[1], 3) < 0)
			_exit(127);
		if (chdir(f[0]) < 0) {
			dprintf(2, "berth-io: chdir %s: %s\n", f[0], strerror(errno));
			_exit(127);
		}
		sigset_t none;
		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		signal(SIGPIPE, SIG_DFL);
		char *env[nenv + 1];
		memcpy(env, envp, nenv * sizeof(char *));
		env[nenv] = NULL;
		/* argv[-1] is the program's own field; the NULL after the last field ends argv. */
		execve(program, argv - 1, env);
		dprintf(2, "berth-io: exec %s: %s\n", program, strerror(errno));
		_exit(127);
	}
	close(p[1]);
	char text[2048];
	size_t len = 0;
	if (pid > 0) {
		while (len < sizeof(text) - 1) {
			ssize_t n = read(p[0], text + len, sizeof(text) - 1 - len);
			if (n < 0 && errno == EINTR)
				continue;
			if (n <= 0)
				break;
			len += n;
			if (memchr(text + len - n, '\n', n))
				break;
		}
	}
	text[len] = 0;
	char *nl = strchr(text, '\n');
	if (nl)
		*nl = 0;
	int status = 0, code = pid < 0 ? 125 : 0;
	/* The program (conmon) forks its monitor and exits; reap it unless it is still running. */
	if (pid > 0 && waitpid(pid, &status, len > 0 ? WNOHANG : 0) == pid && WIFEXITED(status) && WEXITSTATUS(status) == 127)
		code = 127;
	reply(id, code, text);
	_exit(0);
}

static int serve(void)
{
	static char buf[1 << 16];
	size_t len = 0;
	signal(SIGCHLD, SIG_IGN); /* workers are reaped by the kernel */
	for (;;) {
		ssize_t n = read(0, buf + len, sizeof(buf) - 1 - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return 0;
		len += n;
		buf[len] = 0;
		char *line = buf, *nl;
		while ((nl = memchr(line, '\n', buf + len - line))) {
			*nl = 0;
			char *f[1024];
			int nf = 0;
			for (char *rest = line, *t; nf < 1023 && (t = strsep(&rest, "\t")) != NULL;) {
				unescape(t);
				f[nf++] = t;
			}
			f[nf] = NULL;
			line = nl + 1;
			if (nf < 2)
				continue;
			message[0] = 0;
			if (strcmp(f[1], "mount") == 0 && nf == 6) {
				int code = do_mount(f[2], f[3], f[4], f[5]);
				reply(f[0], code, message);
			} else if (strcmp(f[1], "umount") == 0 && nf == 3) {
				int code = do_umount(f[2]);
				reply(f[0], code, message);
			} else if (strcmp(f[1], "launch") == 0) {
				launch(f[0], f + 2, nf - 2);
			} else {
				reply(f[0], 125, "unknown request");
			}
		}
		len = buf + len - line;
		memmove(buf, line, len);
		if (len >= sizeof(buf) - 1)
			len = 0; /* a line longer than the buffer: drop it */
	}
}

int main(int argc, char **argv)
{
	signal(SIGPIPE, SIG_IGN);
	if (argc >= 4 && strcmp(argv[1], "attach") == 0) {
		int with_stdin = strcmp(argv[2], "-i") == 0;
		if (with_stdin && argc >= 5)
			return attach(1, argv[3], argv[4]);
		return attach(0, argv[2], argv[3]);
	}
	if (argc >= 6 && strcmp(argv[1], "console") == 0 && strcmp(argv[4], "--") == 0)
		return console(argv[2], argv[3], argv + 5);
	if (argc == 6 && strcmp(argv[1], "mount") == 0) {
		int code = do_mount(argv[2], argv[3], argv[4], argv[5]);
		fputs(message, code == 0 ? stdout : stderr);
		return code;
	}
	if (argc == 3 && strcmp(argv[1], "umount") == 0) {
		int code = do_umount(argv[2]);
		fputs(message, code == 0 ? stdout : stderr);
		return code;
	}
	if (argc == 2 && strcmp(argv[1], "serve") == 0)
		return serve();
	fprintf(stderr, "usage: berth-io attach [-i] <dir> <name> | berth-io console <socket> <pid-file> -- <command...> |\n"
			"       berth-io mount <type> <source> <target> <options> | berth-io umount <target> | berth-io serve\n");
	return 125;
}
