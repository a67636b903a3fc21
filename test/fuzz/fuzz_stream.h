/*
 * fuzz_stream.h - a byte stream fed through the real reader (conn_process).
 *
 * Shared by the fuzz targets that take a peer's stream: the input is
 * delivered in chunks as recv() would, conn_process frames it with its own
 * length checks, and every framed message goes to the target's callback.
 * The summary hash lets a target check that the split does not matter.
 */
#ifndef PGSLUICE_FUZZ_STREAM_H
#define PGSLUICE_FUZZ_STREAM_H

#include <stddef.h>
#include <stdint.h>

/* Bytes per input buffer: small, so that longer messages take the streamed path. */
#define FUZZ_STREAM_BUF 1024u

/*
 * Called for every message the reader framed. type: its type byte; total:
 * its size with type and length; body: its body when it was whole in the
 * buffer, NULL when it was too big and streamed past (body_len is then 0).
 */
typedef void (*fuzz_stream_fn)(void *arg, uint8_t type, uint32_t total, const uint8_t *body,
			       uint32_t body_len);

/*
 * Feeds size bytes at data through conn_process in chunks of chunk bytes
 * (0: everything at once) with messages bounded by max_packet. Returns a
 * hash of what was framed (types, sizes, whole bodies, how the stream
 * ended), the same for every chunk size when the reader is right; traps
 * when the reader stalls with a full buffer.
 */
uint64_t fuzz_stream_run(const uint8_t *data, size_t size, size_t chunk, uint32_t max_packet,
			 fuzz_stream_fn fn, void *arg);

#endif
