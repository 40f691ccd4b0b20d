#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Write the seed corpus of the fuzz target (tests/fuzz/corpus/).

Each seed is a short program in the target's input format (fuzz_hmmu.c,
docs/fuzzing.md): an opcode byte, then the operation's argument bytes.
Run from anywhere: python3 tests/fuzz/mkcorpus.py
"""
import os
import struct

MMAP, MUNMAP, MPROTECT, MADVISE, MREMAP, CPU_WRITE, CPU_READ, RANGE_FAULT, \
    DMIRROR, MIGRATE, FORK, NOTIFIER, INVALID, PIN, AGE = range(15)
CHILD = 0x80
RW, RO, NONE = 0, 1, 2
DONTNEED, HUGEPAGE, NOHUGEPAGE, DONTFORK, DOFORK = range(5)
D_READ, D_WRITE, D_TO_DEV, D_TO_SYS, D_SNAPSHOT, D_EXCLUSIVE, D_CHECK = range(7)
COHERENT = 8


def rng(idx, c):
    """A range: page index and the count byte (1 + c % 16 pages below 224; 255: 2 MiB)."""
    return struct.pack('<HB', idx, c)


def mmap(idx, c, prot=RW):
    return bytes([MMAP]) + rng(idx, c) + bytes([prot])


def write(idx, off=0, length=4096, seed=1, step=3):
    return bytes([CPU_WRITE]) + struct.pack('<HHH', idx, off, length - 1) + bytes([seed, step])


def read(idx, off=0, length=4096):
    return bytes([CPU_READ]) + struct.pack('<HHH', idx, off, length - 1)


def dmirror(cmd, idx, c, extra=b''):
    return bytes([DMIRROR, cmd]) + rng(idx, c) + extra


SEEDS = {
    'mmap_write_read': mmap(0, 7) + write(0, 100, 9000) + read(0, 0, 12288),
    'munmap_hole': mmap(10, 7) + write(10, 0, 8 * 4096 - 1) + bytes([MUNMAP]) + rng(12, 1) + read(10, 0, 12288),
    'mprotect': mmap(20, 5) + write(20) + bytes([MPROTECT]) + rng(20, 2, ) + bytes([RO]) + write(21)
    + bytes([MPROTECT]) + rng(24, 15) + bytes([NONE]) + read(22, 0, 8192),
    'madvise': mmap(30, 7) + write(30, 0, 4 * 4096) + bytes([MADVISE]) + rng(31, 1) + bytes([DONTNEED])
    + bytes([MADVISE]) + rng(34, 1) + bytes([DONTFORK]) + bytes([FORK]) + read(30, 0, 12288),
    'mremap': mmap(40, 3) + write(40, 0, 3 * 4096) + bytes([MREMAP, 0]) + rng(40, 3) + bytes([1, 0, 0])
    + bytes([MREMAP, 1]) + rng(40, 1) + bytes([5, 0, 0])
    + bytes([MREMAP, 2]) + rng(40, 5) + bytes([5]) + struct.pack('<H', 100)
    + bytes([MREMAP, 3]) + rng(100, 5) + bytes([20, 0, 0]),
    'thp': mmap(0, 255) + bytes([MADVISE]) + rng(0, 255) + bytes([HUGEPAGE]) + write(5, 7, 100)
    + bytes([MPROTECT]) + rng(3, 0) + bytes([RO]) + read(0, 0, 12288),
    'range_fault': mmap(50, 7) + write(51) + bytes([RANGE_FAULT, 0]) + rng(50, 7)
    + bytes([RANGE_FAULT, 1]) + rng(48, 15) + bytes([MPROTECT]) + rng(50, 7) + bytes([RO])
    + bytes([RANGE_FAULT, 1]) + rng(50, 3),
    'dmirror_private': mmap(60, 7) + write(60, 0, 8 * 4096) + dmirror(D_TO_DEV, 60, 7) + dmirror(D_READ, 60, 7)
    + dmirror(D_WRITE, 62, 1, bytes([9, 5])) + read(61, 0, 8192) + dmirror(D_TO_DEV, 60, 7)
    + dmirror(D_TO_SYS, 60, 3) + dmirror(D_SNAPSHOT, 58, 12),
    'dmirror_coherent': mmap(70, 7) + write(70, 0, 8 * 4096) + dmirror(D_TO_DEV | COHERENT, 70, 7)
    + dmirror(D_READ, 70, 7) + dmirror(D_TO_DEV, 72, 3) + write(73, 5, 10) + dmirror(D_SNAPSHOT | COHERENT, 70, 7),
    'exclusive': mmap(80, 3) + write(80, 0, 4 * 4096) + dmirror(D_EXCLUSIVE, 80, 3) + dmirror(D_CHECK, 80, 3)
    + read(81) + dmirror(D_WRITE, 80, 0, bytes([3, 3])) + bytes([FORK]) + dmirror(D_EXCLUSIVE, 82, 1),
    'migrate_raw': mmap(90, 7) + write(90, 0, 3 * 4096) + bytes([MIGRATE, 1 | 8, 0]) + rng(90, 7)
    + bytes([MIGRATE, 0, 0]) + rng(90, 1) + read(92) + bytes([MIGRATE, 1 | 16, 0x5]) + rng(90, 7)
    + bytes([MIGRATE, 1 | 6, 0]) + rng(94, 3) + bytes([FORK]) + read(90, 0, 8192) + bytes([CHILD | CPU_READ])
    + struct.pack('<HHH', 90, 0, 4095),
    'fork': mmap(100, 7) + write(100, 0, 8 * 4096) + bytes([FORK]) + bytes([CHILD | CPU_WRITE])
    + struct.pack('<HHH', 101, 0, 4095) + bytes([7, 7]) + write(102) + dmirror(D_TO_DEV, 100, 7)
    + bytes([CHILD | DMIRROR, D_WRITE]) + rng(103, 1) + bytes([1, 1]) + bytes([CHILD | MUNMAP]) + rng(100, 1)
    + bytes([FORK]) + bytes([FORK]),
    'notifier': mmap(110, 7) + bytes([NOTIFIER, 0]) + rng(0, 0) + bytes([NOTIFIER, 2]) + rng(110, 3)
    + write(111) + bytes([MUNMAP]) + rng(110, 1) + bytes([NOTIFIER, 1 | 4]) + rng(0, 0)
    + bytes([NOTIFIER, 3 | 4]) + rng(0, 0) + bytes([NOTIFIER, 0]) + rng(0, 0),
    'pin_age': mmap(130, 7) + write(130, 0, 4 * 4096) + bytes([PIN, 3]) + rng(130, 3) + bytes([FORK])
    + write(131) + dmirror(D_TO_DEV, 130, 7) + bytes([MIGRATE, 1, 0]) + rng(130, 7) + dmirror(D_EXCLUSIVE, 130, 3)
    + bytes([PIN, 0]) + rng(0, 0) + bytes([AGE, 2]) + rng(130, 7) + bytes([AGE, 0]) + rng(128, 15)
    + bytes([PIN, 0]) + rng(129, 3) + bytes([CHILD | PIN, 1]) + rng(130, 1) + read(130, 0, 8192),
    'invalid': mmap(120, 7) + write(120) + b''.join(bytes([INVALID, k]) + rng(120, 3) for k in range(46)),
}


def main():
    out = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'corpus')
    os.makedirs(out, exist_ok=True)
    for name, data in SEEDS.items():
        with open(os.path.join(out, name), 'wb') as f:
            f.write(data)


if __name__ == '__main__':
    main()
