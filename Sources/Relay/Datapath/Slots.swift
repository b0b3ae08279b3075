/// A fixed set of slots for connections, addressed by index from epoll tokens.
struct Slots<Element: AnyObject> {
    private(set) var items: [Element?] = []
    private var free: [Int] = []
    private(set) var count = 0

    mutating func insert(_ item: Element) -> Int {
        count += 1
        if let index = free.popLast() {
            items[index] = item
            return index
        }
        items.append(item)
        return items.count - 1
    }

    mutating func remove(_ index: Int) {
        guard index < items.count, items[index] != nil else { return }
        items[index] = nil
        free.append(index)
        count -= 1
    }

    subscript(index: Int) -> Element? { index < items.count ? items[index] : nil }

    /// Indices of occupied slots.
    var occupied: [Int] { items.indices.filter { items[$0] != nil } }
}
