/*
 * fuzz_classify.c - libFuzzer target: the SQL lexer and everything built on it.
 *
 * The input is SQL text. Every public function of classify.h runs on it
 * (classification with and without configured functions, statement
 * splitting, session SET detection, fingerprint, redaction, insert shape
 * and parameter shifting), with small and large output buffers. Cheap
 * invariants trap: outputs stay NUL-terminated inside their buffers, a cut
 * output is a prefix of the whole one at a UTF-8 boundary, the fingerprint
 * does not depend on the buffer, redaction only replaces literals by '?' and
 * leaves nothing to redact, offsets stay inside the input.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "classify.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const write_functions[] = {"nextval", "setval", "app.bump"};
static const char *const read_only_functions[] = {"lower", "app.lookup"};

static const struct classify_options options = {
	.write_functions = write_functions,
	.n_write_functions = 3,
	.read_only_functions = read_only_functions,
	.n_read_only_functions = 2,
	.unknown_functions_readonly = true,
};

static void check(bool ok)
{
	if (!ok)
		__builtin_trap();
}

/* s holds a NUL within cap bytes. */
static void check_terminated(const char *s, size_t cap)
{
	check(memchr(s, 0, cap) != NULL);
}

static bool is_utf8(const uint8_t *s, size_t n)
{
	size_t i = 0;
	while (i < n) {
		uint8_t c = s[i];
		size_t k = c < 0x80 ? 0 : (c & 0xE0) == 0xC0 ? 1 : (c & 0xF0) == 0xE0 ? 2 : 3;
		if ((c & 0xC0) == 0x80 || (c & 0xF8) == 0xF8 || i + k >= n)
			return false;
		for (size_t j = 1; j <= k; j++)
			if ((s[i + j] & 0xC0) != 0x80)
				return false;
		i += k + 1;
	}
	return true;
}

/*
 * A cut output (cut bytes kept of a buffer of cap) against the whole one
 * (whole, whole_len): a prefix, cut only as far back as a UTF-8 boundary.
 */
static void check_cut(const char *cut, size_t cut_len, size_t cap, const char *whole,
		      size_t whole_len, bool utf8)
{
	check(cut_len < cap && cut[cut_len] == '\0' && cut_len <= whole_len);
	check(memcmp(cut, whole, cut_len) == 0);
	if (whole_len < cap) {
		check(cut_len == whole_len);
	} else if (utf8) {
		check(cut_len + 4 >= cap);
		check(((unsigned char)whole[cut_len] & 0xC0) != 0x80);
	}
}

static void check_result(bool ok, const struct classify_result *r)
{
	check(ok == !r->lex_error);
	check(!r->lex_error || !r->read_only);
	check(classify_kind_name(r->kind) != NULL);
	check_terminated(r->detail, sizeof(r->detail));
	check_terminated(r->reason_text, sizeof(r->reason_text));
	check(!r->begin_read_only || r->kind == CLASSIFY_BEGIN || r->kind == CLASSIFY_START);
}

static void run_statements(const char *sql, size_t len, const struct classify_result *whole)
{
	size_t pos = 0, off, n, prev = 0;
	unsigned count = 0;
	while (classify_next_statement(sql, len, &pos, &off, &n)) {
		check(pos > prev && pos <= len && off >= prev && n > 0 && off + n <= len);
		prev = pos;
		count++;
		struct classify_result r;
		check_result(classify_statement(sql + off, n, NULL, &r), &r);
		char name[CLASSIFY_NAME_MAX], value[1024], tiny[8];
		enum classify_set k = classify_session_set(sql + off, n, name, value, sizeof(value));
		if (k != CLASSIFY_SET_NONE)
			check_terminated(name, sizeof(name));
		if (k == CLASSIFY_SET_VALUE)
			check(strlen(value) < sizeof(value));
		k = classify_session_set(sql + off, n, name, tiny, sizeof(tiny));
		if (k == CLASSIFY_SET_VALUE)
			check(strlen(tiny) < sizeof(tiny));
	}
	check(pos <= len);
	if (!whole->lex_error)
		check(count == whole->statement_count);
}

static void run_fingerprint(const char *sql, size_t len, bool utf8)
{
	size_t big_cap = 4 * len + 64, big_len = 0, cut_len = 0, none_len = 0;
	char *big = malloc(big_cap);
	check(big != NULL);
	uint64_t h = classify_fingerprint(sql, len, big, big_cap, &big_len);
	check(classify_fingerprint(sql, len, NULL, 0, &none_len) == h && none_len == big_len);
	check(classify_fingerprint(sql, len, big, big_cap, NULL) == h);
	/* A quoted name may hold a NUL: then the cut length is not visible. */
	bool whole = big_len < big_cap && strlen(big) == big_len;
	static const size_t caps[] = {1, 7, 64};
	for (size_t i = 0; i < sizeof(caps) / sizeof(caps[0]); i++) {
		char cut[64];
		check(classify_fingerprint(sql, len, cut, caps[i], &cut_len) == h);
		check(cut_len == big_len);
		check_terminated(cut, caps[i]);
		if (whole)
			check_cut(cut, strlen(cut), caps[i], big, big_len, utf8);
	}
	free(big);
}

static void run_redact(const char *sql, size_t len, bool utf8)
{
	size_t cap = len + 1;
	char *out = malloc(cap), *again = malloc(cap);
	check(out != NULL && again != NULL);
	size_t n = classify_redact(sql, len, out, cap);
	check(n <= len && out[n] == '\0');
	/* Only '?' is new: no other byte appears more often than in the input. */
	size_t in_count[256] = {0}, out_count[256] = {0};
	for (size_t i = 0; i < len; i++)
		in_count[(unsigned char)sql[i]]++;
	for (size_t i = 0; i < n; i++)
		out_count[(unsigned char)out[i]]++;
	for (size_t b = 0; b < 256; b++)
		check(b == '?' || out_count[b] <= in_count[b]);
	/* Nothing is left to redact: a second pass changes nothing. */
	size_t m = classify_redact(out, n, again, cap);
	check(m == n && memcmp(out, again, n) == 0);
	static const size_t caps[] = {1, 7, 64};
	for (size_t i = 0; i < sizeof(caps) / sizeof(caps[0]); i++) {
		char cut[64];
		size_t k = classify_redact(sql, len, cut, caps[i]);
		check_cut(cut, k, caps[i], out, n, utf8);
	}
	check(classify_redact(sql, len, NULL, 0) == 0);
	free(out);
	free(again);
}

static void run_shift(const char *text, size_t len)
{
	size_t cap = 2 * len + 64, out_len;
	char *out = malloc(cap);
	check(out != NULL);
	static const unsigned shifts[] = {0, 9, 65535};
	for (size_t i = 0; i < sizeof(shifts) / sizeof(shifts[0]); i++) {
		if (classify_shift_params(text, len, shifts[i], out, cap, &out_len))
			check(out_len < cap && out[out_len] == '\0');
		char tiny[8];
		if (classify_shift_params(text, len, shifts[i], tiny, sizeof(tiny), &out_len))
			check(out_len < sizeof(tiny) && tiny[out_len] == '\0');
		else
			check(tiny[0] == '\0' && out_len == 0);
	}
	free(out);
}

static void check_part(size_t off, size_t n, size_t len)
{
	check(n == 0 || (off <= len && n <= len - off));
}

static void run_insert(const char *sql, size_t len)
{
	struct insert_shape sh, again;
	if (!classify_insert_shape(sql, len, &sh))
		return;
	check_part(sh.table_off, sh.table_len, len);
	check_part(sh.columns_off, sh.columns_len, len);
	check_part(sh.values_off, sh.values_len, len);
	check_part(sh.conflict_off, sh.conflict_len, len);
	check(sh.table_len > 0 && sh.n_values > 0);
	check(!sh.params_exact || sh.max_param <= CLASSIFY_MAX_CHECKED_PARAMS);
	check(classify_insert_shape(sql, len, &again) && again.batch_key == sh.batch_key);
	run_shift(sql + sh.values_off, sh.values_len);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *sql = (const char *)data;
	bool utf8 = is_utf8(data, size);
	struct classify_result r;
	check_result(classify_statement(sql, size, NULL, &r), &r);
	struct classify_result with_opts;
	check_result(classify_statement(sql, size, &options, &with_opts), &with_opts);
	check(with_opts.lex_error == r.lex_error && with_opts.kind == r.kind);
	run_statements(sql, size, &r);
	run_fingerprint(sql, size, utf8);
	run_redact(sql, size, utf8);
	run_insert(sql, size);
	run_shift(sql, size);
	return 0;
}
