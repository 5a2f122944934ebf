import Numerics
import SwiftMPI
import Testing

/// In-process tests on a singleton MPI job (one rank). Multi-rank behaviour
/// is tested under mpirun in IntegrationTests. MPI is initialized once and
/// never finalized here, so every MPI test lives in this serialized suite.
@Suite(.serialized)
struct MPICommunicatorTests {
    let world: Communicator

    init() throws {
        world = try MPI.initialize(threadLevel: .serialized)
    }

    /// A launcher that started several tasks, each of which MPI sees as a world of one.
    @Test func aLauncherWorldMismatchIsNamed() {
        #expect(MPI.launcherMismatch(worldSize: 1, environment: ["SLURM_STEP_NUM_TASKS": "4"])?.contains("SLURM_STEP_NUM_TASKS=4") == true)
        #expect(MPI.launcherMismatch(worldSize: 1, environment: ["OMPI_COMM_WORLD_SIZE": "2"])?.contains("--mpi=pmi2") == true)
        #expect(MPI.launcherMismatch(worldSize: 1, environment: ["PMI_SIZE": "2"]) != nil)
        #expect(MPI.launcherMismatch(worldSize: 4, environment: ["SLURM_STEP_NUM_TASKS": "4", "PMI_SIZE": "4"]) == nil)
        #expect(MPI.launcherMismatch(worldSize: 1, environment: ["SLURM_STEP_NUM_TASKS": "1", "PMI_SIZE": "1"]) == nil)
        #expect(MPI.launcherMismatch(worldSize: 1, environment: [:]) == nil)
    }

    @Test func singletonWorld() throws {
        #expect(world.rank == 0)
        #expect(world.size == 1)
        #expect(MPI.libraryVersion.isEmpty == false)
        #expect(MPI.processorName.isEmpty == false)
    }

    @Test func allreduceOnOneRankKeepsValues() throws {
        var floats: [Float] = [1, 2, 3]
        try world.allreduce(&floats, op: .sum)
        #expect(floats == [1, 2, 3])
        var complex = [Complex<Float>(1, -2)]
        try world.allreduce(&complex, op: .sum)
        #expect(complex == [Complex(1, -2)])
        #expect(try world.allreduce(41, op: .max) == 41)
        #expect(try world.allreduce(2.5, op: .min) == 2.5)
    }

    @Test(arguments: [0, 1, 15, 16, 17, 64, 1000])
    func chunkedSelfMessagesArriveWhole(count: Int) throws {
        // 64-byte pieces: 16 floats each, so these counts cover empty, partial,
        // exact multiples and many pieces.
        let comm = try world.duplicate()
        comm.maxMessageBytes = 64
        let values = (0..<count).map { Float($0) * 0.5 }
        try values.withUnsafeBufferPointer { buf in
            let request = try comm.isend(buf, to: 0, tag: 3)
            let (received, status) = try comm.receive(Float.self, from: 0, tag: 3)
            try request.wait()
            #expect(received == values)
            #expect(status.count == count)
            #expect(status.source == 0)
        }
        var into = [Float](repeating: -1, count: count)
        try values.withUnsafeBufferPointer { buf in
            try into.withUnsafeMutableBufferPointer { dst in
                let r = try comm.irecv(into: dst, from: 0, tag: 4)
                let s = try comm.isend(buf, to: 0, tag: 4)
                try Request.waitAll([r, s])
            }
        }
        #expect(into == values)
    }

    @Test func chunkedCollectivesOnOneRank() throws {
        let comm = try world.duplicate()
        comm.maxMessageBytes = 32
        let values = (0..<100).map { Double($0) }
        #expect(try comm.broadcast(values, root: 0) == values)
        let gathered = try comm.gatherv(values, root: 0)
        #expect(gathered.values == values)
        #expect(gathered.counts == [100])
        #expect(try comm.scatterv(values, counts: [100], root: 0) == values)
        var sums = values
        try comm.allreduce(&sums, op: .sum)
        #expect(sums == values)
        #expect(try comm.broadcast("straße ✓", root: 0) == "straße ✓")
    }

    @Test func callOnFreedCommunicatorThrows() throws {
        let comm = try world.duplicate()
        try comm.free()
        #expect(comm.isFreed)
        let error = try #require(throws: MPIError.self) { try comm.barrier() }
        #expect(error.call == "MPI_Barrier")
        #expect(error.reason.contains("MPI_ERR_COMM"))
    }

    @Test func sendToMissingRankThrows() throws {
        let error = try #require(throws: MPIError.self) { try world.send([1, 2, 3] as [Int], to: 5, tag: 0) }
        #expect(error.call.contains("MPI_Send(to rank 5"))
        #expect(error.reason.contains("MPI_ERR_RANK"))
    }

    @Test func scattervRejectsCountsThatDoNotAddUp() throws {
        let error = try #require(throws: MPIError.self) { try world.scatterv([1, 2, 3] as [Int], counts: [2], root: 0) }
        #expect(error.description.contains("counts [2] do not split 3 elements"))
    }

    @Test func worldCannotBeFreed() throws {
        let error = try #require(throws: MPIError.self) { try world.free() }
        #expect(error.reason.contains("MPI_COMM_WORLD"))
    }

    @Test func splitAndCartesianOnOneRank() throws {
        let part = try #require(try world.split(color: 0, key: 0))
        #expect(part.size == 1)
        #expect(try world.split(color: nil, key: 0) == nil)
        let grid = try world.cartesian(dims: [0, 0], periodic: [true, false])
        #expect(grid.dims == [1, 1])
        #expect(grid.coords == [0, 0])
        let rows = try grid.shift(dimension: 0)
        #expect(rows.source == 0 && rows.dest == 0)  // periodic: its own neighbour
        let cols = try grid.shift(dimension: 1)
        #expect(cols.source == nil && cols.dest == nil)
        #expect(try grid.rank(at: [0, 0]) == 0)
    }
}
