/// CXI mask bits (cxidb), used for bad pixels found or injected.
public enum PixelMask {
    public static let invalid: UInt32 = 1 << 0
    public static let saturated: UInt32 = 1 << 1
    public static let hot: UInt32 = 1 << 2
    public static let dead: UInt32 = 1 << 3
    public static let shadowed: UInt32 = 1 << 4
    public static let noisy: UInt32 = 1 << 7
}
