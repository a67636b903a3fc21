/*
 * stats.c - counters and latency histograms per database (stats.h).
 */
#include "stats.h"

#include <string.h>

static void latency_reset(struct stats_latency *l)
{
	histogram_reset(&l->query);
	histogram_reset(&l->xact);
	histogram_reset(&l->wait);
}

void stats_init(struct stats *st)
{
	memset(st, 0, sizeof(*st));
	latency_reset(&st->since_start);
	latency_reset(&st->period);
	latency_reset(&st->last);
}

void stats_record_query(struct stats *st, uint64_t usec)
{
	st->total.query_count++;
	st->total.query_time += usec;
	histogram_record(&st->since_start.query, usec);
	histogram_record(&st->period.query, usec);
}

void stats_record_xact(struct stats *st, uint64_t usec)
{
	st->total.xact_count++;
	st->total.xact_time += usec;
	histogram_record(&st->since_start.xact, usec);
	histogram_record(&st->period.xact, usec);
}

void stats_record_wait(struct stats *st, uint64_t usec)
{
	st->total.wait_time += usec;
	histogram_record(&st->since_start.wait, usec);
	histogram_record(&st->period.wait, usec);
}

void stats_record_bytes(struct stats *st, uint64_t received, uint64_t sent)
{
	st->total.bytes_received += received;
	st->total.bytes_sent += sent;
}

void stats_roll_period(struct stats *st, double seconds)
{
	const struct stats_totals *t = &st->total, *b = &st->period_base;
	st->last_delta = (struct stats_totals){
	    .xact_count = t->xact_count - b->xact_count,
	    .query_count = t->query_count - b->query_count,
	    .bytes_received = t->bytes_received - b->bytes_received,
	    .bytes_sent = t->bytes_sent - b->bytes_sent,
	    .xact_time = t->xact_time - b->xact_time,
	    .query_time = t->query_time - b->query_time,
	    .wait_time = t->wait_time - b->wait_time,
	};
	st->period_base = st->total;
	st->last_seconds = seconds;
	st->last = st->period;
	latency_reset(&st->period);
}

uint64_t stats_per_second(const struct stats *st, uint64_t delta)
{
	return st->last_seconds > 0 ? (uint64_t)((double)delta / st->last_seconds) : 0;
}
