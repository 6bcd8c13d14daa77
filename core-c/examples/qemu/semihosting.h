/* Semihosting: the host's files, console, command line and exit status, through the debugger
 * (QEMU's -semihosting-config). ARM's semihosting calls, "bkpt 0xAB" on M-profile cores. */
#ifndef SEMIHOSTING_H
#define SEMIHOSTING_H

#include <stddef.h>
#include <stdint.h>

/* Prints a NUL-terminated string on the host's console. */
void sh_print(const char *text);
/* Prints an unsigned integer in decimal. */
void sh_print_u32(uint32_t value);
/* Prints a signed integer in decimal. */
void sh_print_i32(int32_t value);
/* Opens a host file: for reading ("rb") or created for writing ("wb"); -1 on failure. */
int sh_open(const char *path, int write);
/* Reads up to len bytes; returns how many were read (0 at the end of the file), -1 on error. */
int sh_read(int handle, void *buffer, size_t len);
/* Writes len bytes; 0 on success, -1 if not all were written. */
int sh_write(int handle, const void *buffer, size_t len);
/* Closes a host file. */
void sh_close(int handle);
/* The command line (program name, then arguments, separated by spaces) into buffer, NUL
 * terminated; 0 on success, -1 if it does not fit or cannot be read. */
int sh_command_line(char *buffer, size_t len);
/* Ends the program with an exit status the host sees as QEMU's own. */
void sh_exit(int status) __attribute__((noreturn));

#endif
