/* SPDX-License-Identifier: MIT */
/*
 * Conformance programs that hold many cases (hmm_tests.c, migration.c):
 * `<program> <scenario> private|coherent|host` runs one scenario in one variant
 * as a cmocka group of one test, <scenario>.<variant>, under the harness's
 * group fixture (hmmu_init / hmmu_exit).
 *
 * Each program has a table of CONF_CASE(<scenario>, <arg>, <variants>)
 * lines, one per line: tests/CMakeLists.txt reads them and registers
 * conformance.<scenario>.<variant> for each variant named (V_PRIVATE,
 * V_COHERENT, V_BOTH, V_HOST).  <arg> is the program's own (e.g. a fixture
 * choice).
 *
 * The host variant is the private one on a host mm (HMMU_MM_HOST, docs/host.md)
 * whose CPU accesses are plain loads and stores through the mm's real
 * pointers.  Where host mms cannot run, it exits with CONF_SKIP (ctest
 * reports it skipped) after printing why.
 */
#ifndef HMMU_TEST_CONF_CASE_H
#define HMMU_TEST_CONF_CASE_H

#include <stdio.h>
#include <string.h>

#include "harness.h"

enum { V_PRIVATE = 1, V_COHERENT = 2, V_BOTH = V_PRIVATE | V_COHERENT, V_HOST = 4 };
/* Exit status of a variant that cannot run here (tests/CMakeLists.txt: SKIP_RETURN_CODE). */
#define CONF_SKIP 77

struct conf_case {
	const char *name;
	CMUnitTestFunction fn;
	int arg;
	int variants;
};
#define CONF_CASE(fn, arg, variants) { #fn, fn, arg, variants }

/* The case being run and its variant's memory type. */
static const struct conf_case *conf_current;
static enum hmmu_memory_type conf_variant;
/* The host variant: the mm is a host mm, CPU accesses are plain loads and stores. */
static bool conf_host;

/*
 * CPU accesses.  hmmu_access() on an ordinary mm; on a host mm (the host
 * variant) plain loads and stores through the address itself, with hmmu's
 * SIGBUS handler in front of the one cmocka installs around each test.
 */
static inline void cpu_host_arm(void)
{
	assert_int_equal(hmmu_host_signals(), 0);
}

static inline int cpu_access(struct hmmu_mm *mm, unsigned long addr, void *buf, size_t len, unsigned int flags)
{
	if (!conf_host)
		return hmmu_access(mm, addr, buf, len, flags);
	cpu_host_arm();
	if (flags == HMMU_ACCESS_WRITE)
		memcpy((void *)addr, buf, len);
	else
		memcpy(buf, (const void *)addr, len);
	return 0;
}

static inline void cpu_get(struct hmmu_mm *mm, unsigned long addr, void *buf, size_t len)
{
	assert_int_equal(cpu_access(mm, addr, buf, len, HMMU_ACCESS_READ), 0);
}

static inline void cpu_put(struct hmmu_mm *mm, unsigned long addr, const void *buf, size_t len)
{
	assert_int_equal(cpu_access(mm, addr, (void *)buf, len, HMMU_ACCESS_WRITE), 0);
}

static inline bool conf_coherent(void)
{
	return conf_variant == HMMU_MEMORY_DEVICE_COHERENT;
}

static inline int conf_usage(const char *prog, const struct conf_case *cases, size_t n)
{
	fprintf(stderr, "usage: %s <scenario> private|coherent|host\nscenarios:", prog);
	for (size_t i = 0; i < n; i++)
		fprintf(stderr, " %s", cases[i].name);
	fprintf(stderr, "\n");
	return 2;
}

/* Run the case named by argv[1] in variant argv[2] with per-test @setup / @teardown. */
static inline int conf_main(int argc, char **argv, const struct conf_case *cases, size_t n,
			    CMFixtureFunction setup, CMFixtureFunction teardown)
{
	char name[128];
	int vbit;

	if (argc != 3)
		return conf_usage(argv[0], cases, n);
	for (size_t i = 0; i < n; i++)
		if (!strcmp(argv[1], cases[i].name))
			conf_current = &cases[i];
	if (!strcmp(argv[2], "private")) {
		conf_variant = HMMU_MEMORY_DEVICE_PRIVATE;
		vbit = V_PRIVATE;
	} else if (!strcmp(argv[2], "coherent")) {
		conf_variant = HMMU_MEMORY_DEVICE_COHERENT;
		vbit = V_COHERENT;
	} else if (!strcmp(argv[2], "host")) {
		conf_variant = HMMU_MEMORY_DEVICE_PRIVATE;
		conf_host = true;
		vbit = V_HOST;
	} else {
		return conf_usage(argv[0], cases, n);
	}
	if (!conf_current || !(conf_current->variants & vbit))
		return conf_usage(argv[0], cases, n);
	if (conf_host) {
		const char *why;

		if (hmmu_host_probe(&why)) {
			printf("SKIP %s.host: host mms unavailable: %s\n", conf_current->name, why);
			return CONF_SKIP;
		}
		hmmu_test_mm_flags = HMMU_MM_HOST;	/* hmmu_test_mm() */
	}

	snprintf(name, sizeof(name), "%s.%s", conf_current->name, argv[2]);
	const struct CMUnitTest tests[] = {
		{ .name = name, .test_func = conf_current->fn, .setup_func = setup, .teardown_func = teardown },
	};
	return cmocka_run_group_tests_name("conformance", tests, hmmu_test_group_setup, hmmu_test_group_teardown);
}

#endif
