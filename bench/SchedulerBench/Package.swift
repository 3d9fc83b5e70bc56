// swift-tools-version: 6.0
// Benchmark (not a test) of the engine pools' scheduler, in a package of its own so that
// the root package stays as it is. The root package exports only the `switchyard`
// executable, so another package cannot depend on its Pools module; this one compiles
// the repository's own Sources/Pools (and Sources/CHiredis, which Pools links) through
// symlinks, with the same dependencies and settings. See bench/scheduler.sh.
import PackageDescription

let swiftSettings: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
]

let package = Package(
    name: "SchedulerBench",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "scheduler-bench", targets: ["scheduler-bench"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
    ],
    targets: [
        // Symlinks: Sources/CHiredis -> ../../../Sources/CHiredis, Sources/Pools -> ../../../Sources/Pools.
        .systemLibrary(name: "CHiredis", pkgConfig: "hiredis", providers: [.apt(["libhiredis-dev"])]),
        .target(
            name: "Pools",
            dependencies: [
                "CHiredis",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        .executableTarget(name: "scheduler-bench", dependencies: ["Pools"], swiftSettings: swiftSettings),
    ]
)
