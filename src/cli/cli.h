/* cli.h: the subcommands of the iplock binary. Each is `int NAME_main(int argc, char **argv)`
 * with argv[0] the subcommand name; it returns the process exit code.
 * cli/ owns argument parsing, usage texts, exit codes and printing, one file per subcommand;
 * the engines live in their own folders. It may include every layer (core, net, http, store
 * and the products); only src/main.c includes cli/. */
#ifndef IPLOCK_CLI_H
#define IPLOCK_CLI_H

#include <jansson.h>

int proxy_main(int argc, char **argv);
int passwd_main(int argc, char **argv);
int gate_main(int argc, char **argv);
int keys_main(int argc, char **argv);
int verify_main(int argc, char **argv);
int echo_main(int argc, char **argv);
int scan_main(int argc, char **argv);
int webhook_main(int argc, char **argv);
int tunnel_main(int argc, char **argv);
int console_main(int argc, char **argv);
int users_main(int argc, char **argv);

/* fprintf(stderr, ...) with every API key or webhook secret in the text masked (prefix and
 * last 4): the way every subcommand prints an error that may quote user input. */
void cli_errorf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* "iplock CMD: MSG" or "iplock CMD: MSG: ARG" through cli_errorf; returns STATUS, the exit
 * status the caller passes on (2 bad usage, 1 bad input): one shape for every such line. */
int cli_fail(const char *cmd, int status, const char *msg, const char *arg);

/* J as jansson's FLAGS write it, and a newline, on stdout; J stays the caller's. */
void cli_json_print(const json_t *j, size_t flags);

#endif
