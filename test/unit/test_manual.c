/*
 * test_manual.c - the manual pages against the code, so that they cannot
 * drift: every key of config_keys[] has exactly one entry in the [pgsluice]
 * section of doc/pgsluice.ini.5, with its type, bounds, default and reload
 * class, and no other key has one; every option "pgsluice --help" lists is
 * in doc/pgsluice.1 (when PGSLUICE_BIN names the binary). The pages are read
 * from $PGSLUICE_SRCDIR/doc, or ./doc.
 */
#include <check.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "suites.h"

#define MANUAL_LINE_MAX    1024
#define MANUAL_ENTRIES_MAX 512

/* One ".TP" / ".B key" / ".I spec" entry of the [pgsluice] section. */
struct manual_entry {
	char name[64];
	char spec[MANUAL_LINE_MAX];
	int line;
};

static FILE *manual_open(const char *page, char *path, size_t cap)
{
	const char *dir = getenv("PGSLUICE_SRCDIR");
	snprintf(path, cap, "%s/doc/%s", dir != NULL ? dir : ".", page);
	FILE *f = fopen(path, "r");
	ck_assert_msg(f != NULL, "cannot open %s", path);
	return f;
}

static void manual_chomp(char *line)
{
	line[strcspn(line, "\n")] = '\0';
}

/*
 * Reads the entries of the [pgsluice] section of pgsluice.ini.5 into out
 * (at most cap); returns how many. Fails the test on a ".B" line that does
 * not follow ".TP", so that no entry can hide from the checks.
 */
static size_t manual_read_entries(struct manual_entry *out, size_t cap)
{
	char path[1024], line[MANUAL_LINE_MAX], prev[MANUAL_LINE_MAX] = "";
	bool in_section = false;
	size_t n = 0;
	int lineno = 0;
	FILE *f = manual_open("pgsluice.ini.5", path, sizeof(path));

	while (fgets(line, sizeof(line), f) != NULL) {
		lineno++;
		manual_chomp(line);
		if (strncmp(line, ".SH", 3) == 0)
			in_section = strstr(line, "[pgsluice]") != NULL;
		if (in_section && strncmp(line, ".B ", 3) == 0) {
			ck_assert_msg(strcmp(prev, ".TP") == 0,
				      "%s:%d: \".B\" outside of a \".TP\" entry: %s", path, lineno,
				      line);
			ck_assert_msg(n < cap, "%s: more than %zu entries", path, cap);
			struct manual_entry *e = &out[n++];
			snprintf(e->name, sizeof(e->name), "%.*s", (int)sizeof(e->name) - 1, line + 3);
			e->line = lineno;
			if (fgets(e->spec, sizeof(e->spec), f) == NULL)
				e->spec[0] = '\0';
			lineno++;
			manual_chomp(e->spec);
			snprintf(prev, sizeof(prev), "%s", e->spec);
			continue;
		}
		snprintf(prev, sizeof(prev), "%s", line);
	}
	fclose(f);
	ck_assert_msg(n > 0, "%s: no [pgsluice] section with entries", path);
	return n;
}

/* Writes a bound of a size key as the INI text config.c would write it. */
static void manual_format_size(const struct cfg_key *k, int64_t v, char *buf, size_t cap)
{
	struct config cfg;
	memset(&cfg, 0, sizeof(cfg));
	if (k->type == CFG_SIZE)
		*(int64_t *)((char *)&cfg + k->offset) = v;
	else
		*(int *)((char *)&cfg + k->offset) = (int)v;
	config_format_value(&cfg, k, buf, cap);
}

/* The ".I" line the manual must show for k. */
static void manual_expected_spec(const struct cfg_key *k, char *buf, size_t cap)
{
	char type[512], lo[32], hi[32];
	size_t n;

	switch (k->type) {
	case CFG_STRING:
		snprintf(type, sizeof(type), "string");
		break;
	case CFG_INT:
		snprintf(type, sizeof(type), "integer, %" PRId64 " to %" PRId64, k->min, k->max);
		break;
	case CFG_BOOL:
		snprintf(type, sizeof(type), "boolean");
		break;
	case CFG_DURATION:
		snprintf(type, sizeof(type), "duration");
		break;
	case CFG_SIZE:
	case CFG_SIZE_INT:
		if (k->min == 0 && k->max == INT64_MAX) {
			snprintf(type, sizeof(type), "size");
			break;
		}
		manual_format_size(k, k->min, lo, sizeof(lo));
		manual_format_size(k, k->max, hi, sizeof(hi));
		snprintf(type, sizeof(type), "size, %s to %s", lo, hi);
		break;
	case CFG_ENUM:
		n = (size_t)snprintf(type, sizeof(type), "one of ");
		for (int i = 0; k->enum_names[i] != NULL && n < sizeof(type); i++)
			n += (size_t)snprintf(type + n, sizeof(type) - n, "%s%s", i > 0 ? ", " : "",
					      k->enum_names[i]);
		break;
	}
	snprintf(buf, cap, ".I \"%s; default: %s; %s\"", type,
		 *k->default_value != '\0' ? k->default_value : "empty",
		 k->reloadable ? "reload" : "restart");
}

START_TEST(every_key_has_one_entry_and_no_other_name_has_one)
{
	static struct manual_entry entries[MANUAL_ENTRIES_MAX];
	size_t n = manual_read_entries(entries, MANUAL_ENTRIES_MAX);

	for (size_t i = 0; i < n; i++) {
		const struct cfg_key *k = config_keys;
		while (k->name != NULL && strcmp(k->name, entries[i].name) != 0)
			k++;
		ck_assert_msg(k->name != NULL, "pgsluice.ini.5:%d documents \"%s\", not a key",
			      entries[i].line, entries[i].name);
	}
	for (const struct cfg_key *k = config_keys; k->name != NULL; k++) {
		int seen = 0;
		for (size_t i = 0; i < n; i++)
			seen += strcmp(entries[i].name, k->name) == 0;
		ck_assert_msg(seen == 1, "pgsluice.ini.5 documents %s %d times", k->name, seen);
	}
}
END_TEST

START_TEST(every_entry_shows_type_default_and_reload_class)
{
	static struct manual_entry entries[MANUAL_ENTRIES_MAX];
	size_t n = manual_read_entries(entries, MANUAL_ENTRIES_MAX);
	char want[MANUAL_LINE_MAX];

	for (size_t i = 0; i < n; i++) {
		const struct cfg_key *k = config_keys;
		while (k->name != NULL && strcmp(k->name, entries[i].name) != 0)
			k++;
		if (k->name == NULL)
			continue; /* reported by the test above */
		manual_expected_spec(k, want, sizeof(want));
		ck_assert_msg(strcmp(entries[i].spec, want) == 0,
			      "pgsluice.ini.5:%d: %s: expected\n  %s\nfound\n  %s",
			      entries[i].line + 1, k->name, want, entries[i].spec);
	}
}
END_TEST

/* true when c may continue an option name ("--check" is not "--checks"). */
static bool manual_option_char(char c)
{
	return c != '\0' && strchr("abcdefghijklmnopqrstuvwxyz-", c) != NULL;
}

/* true when word occurs in text bounded by characters that cannot continue an option. */
static bool manual_has_option(const char *text, const char *word)
{
	size_t len = strlen(word);
	for (const char *p = strstr(text, word); p != NULL; p = strstr(p + 1, word)) {
		bool start_ok = p == text || !manual_option_char(p[-1]);
		bool end_ok = !manual_option_char(p[len]);
		if (start_ok && end_ok)
			return true;
	}
	return false;
}

/* The OPTIONS section of pgsluice.1 with "\-" read as "-", as one string (malloc'd). */
static char *manual_read_options(void)
{
	char path[1024], line[MANUAL_LINE_MAX];
	const size_t cap = 64 * 1024;
	char *text = calloc(1, cap);
	size_t len = 0;
	bool in_section = false;
	FILE *f = manual_open("pgsluice.1", path, sizeof(path));

	ck_assert_ptr_nonnull(text);
	while (fgets(line, sizeof(line), f) != NULL) {
		if (strncmp(line, ".SH", 3) == 0)
			in_section = strstr(line, "OPTIONS") != NULL;
		if (!in_section)
			continue;
		for (const char *p = line; *p != '\0' && len + 1 < cap; p++) {
			if (p[0] == '\\' && p[1] == '-')
				p++;
			text[len++] = *p;
		}
	}
	fclose(f);
	ck_assert_msg(len > 0, "%s has no OPTIONS section", path);
	return text;
}

START_TEST(every_help_option_is_in_the_command_page)
{
	const char *bin = getenv("PGSLUICE_BIN");
	char cmd[1200], line[MANUAL_LINE_MAX];
	int found = 0;

	if (bin == NULL)
		return; /* nothing to compare against: the check needs the built binary */
	ck_assert_msg(strchr(bin, '\'') == NULL, "PGSLUICE_BIN holds a quote: %s", bin);
	snprintf(cmd, sizeof(cmd), "'%s' --help", bin);
	char *options = manual_read_options();
	FILE *p = popen(cmd, "r");
	ck_assert_msg(p != NULL, "cannot run %s", cmd);
	while (fgets(line, sizeof(line), p) != NULL) {
		char *save = NULL;
		/* Option lines start with blanks and a dash: "  -d, --daemon  text". */
		if (line[strspn(line, " ")] != '-')
			continue;
		for (char *w = strtok_r(line, " ,\n", &save); w != NULL && *w == '-';
		     w = strtok_r(NULL, " ,\n", &save)) {
			found++;
			ck_assert_msg(manual_has_option(options, w),
				      "pgsluice --help lists %s; doc/pgsluice.1 OPTIONS does not",
				      w);
		}
	}
	ck_assert_int_eq(pclose(p), 0);
	ck_assert_msg(found > 0, "%s printed no option", cmd);
	free(options);
}
END_TEST

Suite *manual_suite(void)
{
	Suite *s = suite_create("manual");
	TCase *tc = tcase_create("pages");
	tcase_add_test(tc, every_key_has_one_entry_and_no_other_name_has_one);
	tcase_add_test(tc, every_entry_shows_type_default_and_reload_class);
	tcase_add_test(tc, every_help_option_is_in_the_command_page);
	suite_add_tcase(s, tc);
	return s;
}
