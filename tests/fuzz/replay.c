// SPDX-License-Identifier: MIT
/*
 * fuzz_replay: run the fuzz target over files, as libFuzzer would run one
 * input, without libFuzzer (any compiler).  Arguments are input files or
 * directories (every regular file inside is run).  A failed check aborts
 * with the step that failed; exit status 0 means every input passed.
 */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>

#include "fuzz.h"

/* Run the input in @path; 0 or -1 when it cannot be read. */
static int replay_file(const char *path)
{
	FILE *f = fopen(path, "rb");
	static uint8_t buf[1 << 20];
	size_t len;

	if (!f) {
		perror(path);
		return -1;
	}
	len = fread(buf, 1, sizeof(buf), f);
	fclose(f);
	LLVMFuzzerTestOneInput(buf, len);
	return 0;
}

/* Run @path, or every regular file of it if it is a directory; inputs run. */
static long replay_path(const char *path)
{
	struct stat st;
	struct dirent *de;
	long n = 0;
	DIR *dir;

	if (stat(path, &st) || !S_ISDIR(st.st_mode))
		return replay_file(path) ? -1 : 1;
	dir = opendir(path);
	if (!dir)
		return -1;
	while ((de = readdir(dir))) {
		char sub[4096];

		if (de->d_name[0] == '.')
			continue;
		snprintf(sub, sizeof(sub), "%s/%s", path, de->d_name);
		if (stat(sub, &st) || !S_ISREG(st.st_mode))
			continue;
		if (replay_file(sub)) {
			closedir(dir);
			return -1;
		}
		n++;
	}
	closedir(dir);
	return n;
}

int main(int argc, char **argv)
{
	long total = 0;

	if (argc < 2) {
		fprintf(stderr, "usage: %s FILE|DIR...\n", argv[0]);
		return 2;
	}
	LLVMFuzzerInitialize(&argc, &argv);
	for (int i = 1; i < argc; i++) {
		long n = replay_path(argv[i]);

		if (n < 0)
			return 1;
		total += n;
	}
	printf("fuzz_replay: %ld inputs passed\n", total);
	return total ? 0 : 1;
}
