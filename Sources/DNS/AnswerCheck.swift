/// What an upstream answer must be before the relay hands it to a client or caches it.
///
/// The relay is a resolver to its clients: an answer it passes on is an answer it vouches for.
/// A message that does not hold together (records missing that the header counts, data running
/// past the end, a name whose pointers loop) is refused rather than passed through, and TTLs are
/// made sane in place, so that the first answer and the cached copy carry the same TTLs.
public enum AnswerCheck {
    /// Checks every record of an answer (`RecordWalker`'s bounds) and clamps TTLs in place: a TTL
    /// with its top bit set counts as 0 (RFC 2181 §8), and any TTL above `maxTTL` becomes
    /// `maxTTL`. The OPT record's TTL field holds flags, not a TTL, and is left alone. False
    /// when the answer is malformed (some TTLs may already have been clamped).
    ///
    /// A compression pointer may lead into a TTL field (crafted, but legal to walk): then a
    /// clamp changes what a later name reads, and the message is walked once more, so that true
    /// always means the bytes as they now are hold together (a second check agrees).
    public static func check(_ message: UnsafeMutableRawBufferPointer, questionEnd: Int, maxTTL: UInt32) -> Bool {
        let bytes = UnsafeRawBufferPointer(message)
        var clamped = false
        let sound = RecordWalker.walk(bytes, questionEnd: questionEnd) { record in
            guard record.type != 41 else { return }
            let ttl = RecordWalker.u32(bytes, record.ttlOffset)
            let sane = ttl & 0x8000_0000 != 0 ? 0 : min(ttl, maxTTL)
            if sane != ttl {
                RecordWalker.setU32(message, record.ttlOffset, sane)
                clamped = true
            }
        }
        guard sound, clamped else { return sound }
        return RecordWalker.walk(bytes, questionEnd: questionEnd) { _ in }
    }
}
