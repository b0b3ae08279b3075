import CLinuxShim

/// Substring search over bytes with glibc's memmem (vectorised; `_GNU_SOURCE` hides it from
/// Swift's Glibc, hence the shim).
public enum ByteSearch {
    /// Where `needle` starts in `haystack`, or nil (also for an empty needle).
    public static func find(_ needle: UnsafeRawBufferPointer, in haystack: UnsafeRawBufferPointer) -> Int? {
        guard let base = haystack.baseAddress, let pattern = needle.baseAddress, needle.count > 0, needle.count <= haystack.count,
              let hit = tr_memmem(base, haystack.count, pattern, needle.count) else { return nil }
        return UnsafeRawPointer(hit) - base
    }
}
