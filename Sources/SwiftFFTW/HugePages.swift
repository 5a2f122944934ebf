#if canImport(Glibc)
import Glibc
#endif

/// Transparent huge pages for large arrays streamed every iteration.
///
/// Where the kernel grants them only on request (Linux's THP "madvise"
/// mode, common on clusters and VMs), arrays of many megabytes walked in
/// 4 KiB pages miss the TLB every page; under a hypervisor each miss is a
/// two-level walk. Advice only: nothing changes where it is refused.
public enum HugePages {
    static let size = 2 << 20

    /// Asks for huge pages on the whole 2 MiB blocks inside the range;
    /// call before the memory is first touched.
    public static func advise(_ pointer: UnsafeMutableRawPointer, bytes: Int) {
        #if os(Linux)
        guard bytes >= 2 * size else { return }
        let start = (Int(bitPattern: pointer) + size - 1) & ~(size - 1)
        let end = (Int(bitPattern: pointer) + bytes) & ~(size - 1)
        guard end > start, let p = UnsafeMutableRawPointer(bitPattern: start) else { return }
        _ = madvise(p, end - start, MADV_HUGEPAGE)
        #endif
    }
}
