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
 * No allocation beyond the stack; every fd except 0-3 is close-on-exec.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
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
	fprintf(stderr, "usage: berth-io attach [-i] <dir> <name> | berth-io console <socket> <pid-file> -- <command...>\n");
	return 125;
}
