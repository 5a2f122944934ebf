import Foundation

/// Runs a blocking peer (a sender, a server) on its own OS thread: blocking
/// calls inside Swift tasks would starve the 2-thread cooperative pool.
final class TestThread: @unchecked Sendable {
    private let done = DispatchSemaphore(value: 0)
    private var failure: Error?

    init(_ body: @escaping @Sendable () throws -> Void) {
        let thread = Thread { [self] in
            do { try body() } catch { failure = error }
            done.signal()
        }
        thread.start()
    }

    /// Waits for the thread and rethrows what it threw.
    func join() throws {
        done.wait()
        if let failure { throw failure }
    }
}
