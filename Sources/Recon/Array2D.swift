import Numerics

/// A row-major 2-D array (y down, x across).
public struct Array2D<Element>: Sendable where Element: Sendable {
    public let height: Int
    public let width: Int
    public var values: [Element]

    public init(height: Int, width: Int, repeating value: Element) {
        self.height = height
        self.width = width
        values = [Element](repeating: value, count: height * width)
    }

    public init(height: Int, width: Int, values: [Element]) {
        precondition(values.count == height * width, "\(values.count) values for \(height)x\(width)")
        self.height = height
        self.width = width
        self.values = values
    }

    public init(height: Int, width: Int, _ value: (Int, Int) -> Element) {
        self.height = height
        self.width = width
        var v: [Element] = []
        v.reserveCapacity(height * width)
        for y in 0..<height { for x in 0..<width { v.append(value(y, x)) } }
        values = v
    }

    public var count: Int { values.count }
    public var shape: [Int] { [height, width] }

    public subscript(y: Int, x: Int) -> Element {
        get { values[y * width + x] }
        set { values[y * width + x] = newValue }
    }

    public func map<T>(_ transform: (Element) -> T) -> Array2D<T> {
        Array2D<T>(height: height, width: width, values: values.map(transform))
    }

    /// The `height` x `width` block whose top-left corner is (y0, x0).
    public func crop(y0: Int, x0: Int, height h: Int, width w: Int) -> Array2D<Element> {
        precondition(y0 >= 0 && x0 >= 0 && y0 + h <= height && x0 + w <= width, "crop outside \(height)x\(width)")
        var out: [Element] = []
        out.reserveCapacity(h * w)
        for y in y0..<(y0 + h) { out.append(contentsOf: values[(y * width + x0)..<(y * width + x0 + w)]) }
        return Array2D(height: h, width: w, values: out)
    }

    /// Moves the zero frequency between the corner and the centre pixel
    /// (`inverse` undoes it for odd sizes).
    public func fftShifted(inverse: Bool = false) -> Array2D<Element> {
        let sy = inverse ? height - height / 2 : height / 2
        let sx = inverse ? width - width / 2 : width / 2
        var out = values
        for y in 0..<height {
            let ty = (y + sy) % height
            for x in 0..<width { out[ty * width + (x + sx) % width] = values[y * width + x] }
        }
        return Array2D(height: height, width: width, values: out)
    }
}

extension Array2D: Equatable where Element: Equatable {}

extension Array2D where Element == Complex<Float> {
    public var intensity: Array2D<Float> { map { $0.lengthSquared } }
    public var totalIntensity: Double { values.reduce(0) { $0 + Double($1.lengthSquared) } }
}

extension Complex where RealType == Float {
    @inlinable public func scaled(by s: Float) -> Complex<Float> { Complex(real * s, imaginary * s) }
}
