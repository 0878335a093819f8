/* scan.c: placeholder until the scanner lands. */
#include "cli/cli.h"
int scan_main(int argc, char **argv) { (void)argc; (void)argv; return 2; }
