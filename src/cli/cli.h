/* cli.h: the subcommands of the iplock binary. Each is `int NAME_main(int argc, char **argv)`
 * with argv[0] the subcommand name; it returns the process exit code. */
#ifndef IPLOCK_CLI_H
#define IPLOCK_CLI_H

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

/* fprintf(stderr, ...) with every API key or webhook secret in the text masked (prefix and
 * last 4): the way every subcommand prints an error that may quote user input. */
void cli_errorf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
