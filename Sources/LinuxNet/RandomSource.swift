#if canImport(Glibc)
import Glibc
#endif
import CLinuxShim

/// Cryptographically strong random numbers for query IDs and socket choice, drawn from
/// getrandom(2) a page at a time so the hot path makes no syscall per query. One per worker.
public final class RandomSource {
    private let buffer: UnsafeMutableRawPointer
    private let size = 4096
    private var offset: Int

    public init() {
        buffer = .allocate(byteCount: size, alignment: 8)
        offset = size
    }

    deinit { buffer.deallocate() }

    private func refill() {
        var filled = 0
        while filled < size {
            let n = getrandom(buffer + filled, size - filled, 0)
            if n > 0 { filled += n } else if errno != EINTR { fatalError("getrandom failed: \(errno)") }
        }
        offset = 0
    }

    @inline(__always)
    public func next16() -> UInt16 {
        if offset + 2 > size { refill() }
        let value = buffer.loadUnaligned(fromByteOffset: offset, as: UInt16.self)
        offset += 2
        return value
    }

    @inline(__always)
    public func next32() -> UInt32 {
        if offset + 4 > size { refill() }
        let value = buffer.loadUnaligned(fromByteOffset: offset, as: UInt32.self)
        offset += 4
        return value
    }

    /// Uniform in 0..<bound (bound > 0), without modulo bias.
    @inline(__always)
    public func next(below bound: Int) -> Int {
        let b = UInt32(bound)
        let limit = UInt32.max - UInt32.max % b
        while true {
            let v = next32()
            if v < limit { return Int(v % b) }
        }
    }
}
