/// The k-th smallest value (Hoare's selection; reorders the buffer): the
/// median without a sort.
func select(_ k: Int, in v: UnsafeMutableBufferPointer<Float>) -> Float {
    var low = 0, high = v.count - 1
    while low < high {
        let pivot = v[(low + high) / 2]
        var i = low, j = high
        while i <= j {
            while v[i] < pivot { i += 1 }
            while v[j] > pivot { j -= 1 }
            if i <= j {
                v.swapAt(i, j)
                i += 1
                j -= 1
            }
        }
        if k <= j { high = j } else if k >= i { low = i } else { return v[k] }
    }
    return v[k]
}
