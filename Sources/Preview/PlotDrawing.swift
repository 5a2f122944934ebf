/// Lines, text and legends on a Raster, for the PNG plots: the program's
/// plots must read on their own (title, axes with units, a legend) since
/// they are mailed and pasted into logbooks without the command that made them.
extension Raster {
    public enum Align: Sendable { case left, centre, right }
    /// How a legend entry shows its colour: a short line, a filled square or a hollow one.
    public enum Mark: Sendable { case line, square, hollowSquare }

    static let ink: (UInt8, UInt8, UInt8) = (0, 0, 0)

    mutating func line(_ y0: Int, _ x0: Int, _ y1: Int, _ x1: Int, _ c: (UInt8, UInt8, UInt8)) {
        let steps = max(abs(y1 - y0), abs(x1 - x0), 1)
        for s in 0...steps {
            set(y0 + (y1 - y0) * s / steps, x0 + (x1 - x0) * s / steps, c)
        }
    }

    static func textWidth(_ s: String) -> Int { s.count * FixedFont.width }

    /// `s` with its top at `y`, placed by `align` against `x`; `vertical` reads bottom to top,
    /// `x` then its left edge and `y` its centre by `align`.
    mutating func text(_ s: String, y: Int, x: Int, align: Align = .left, vertical: Bool = false,
                       colour: (UInt8, UInt8, UInt8) = ink) {
        let length = Self.textWidth(s)
        let start = align == .left ? 0 : align == .centre ? -length / 2 : -length
        for (i, ch) in s.enumerated() {
            guard let rows = FixedFont.rows(ch) else { continue }
            for (r, bits) in rows.enumerated() {
                for c in 0..<FixedFont.width where bits & (0x80 >> c) != 0 {
                    let along = start + i * FixedFont.width + c
                    if vertical { set(y - along, x + r, colour) } else { set(y + r, x + along, colour) }
                }
            }
        }
    }

    /// A 7x7 square mark centred at (y, x), filled or hollow.
    mutating func square(_ y: Int, _ x: Int, _ c: (UInt8, UInt8, UInt8), hollow: Bool = false) {
        for dy in -3...3 { for dx in -3...3 where !hollow || abs(dy) == 3 || abs(dx) == 3 { set(y + dy, x + dx, c) } }
    }

    /// A boxed legend whose top-right corner is at (`top`, `right`): each entry's mark in its
    /// colour, then its name.
    mutating func legend(_ entries: [(name: String, colour: (UInt8, UInt8, UInt8), mark: Mark)], top: Int, right: Int) {
        guard !entries.isEmpty else { return }
        let width = 26 + (entries.map { Self.textWidth($0.name) }.max() ?? 0), rowHeight = FixedFont.height + 3
        let left = right - width, bottom = top + 4 + rowHeight * entries.count
        for y in top...bottom { for x in left...right { set(y, x, (255, 255, 255)) } }
        let frame: (UInt8, UInt8, UInt8) = (150, 150, 150)
        line(top, left, top, right, frame); line(bottom, left, bottom, right, frame)
        line(top, left, bottom, left, frame); line(top, right, bottom, right, frame)
        for (k, e) in entries.enumerated() {
            let y = top + 3 + k * rowHeight, middle = y + FixedFont.height / 2 - 1
            switch e.mark {
            case .square, .hollowSquare: square(middle, left + 11, e.colour, hollow: e.mark == .hollowSquare)
            case .line:
                line(middle, left + 4, middle, left + 18, e.colour)
                line(middle + 1, left + 4, middle + 1, left + 18, e.colour)
            }
            text(e.name, y: y, x: left + 23)
        }
    }
}
