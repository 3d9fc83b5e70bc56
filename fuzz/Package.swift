// swift-tools-version: 6.0
import PackageDescription

// Coverage-guided fuzz targets (libFuzzer) for the pure parsers and translators in
// `Sources/Providers`. Build and run them with `scripts/fuzz.sh`, which passes
// `--sanitize=fuzzer --sanitize=address`.
//
// `Sources/Providers` here is a symlink to the root package's module, compiled again in
// this package so that:
// - only swift-nio is resolved and built (the root package's graph — Hummingbird,
//   AsyncHTTPClient, GRDB, swift-crypto, … — is never fetched for a fuzz build);
// - the module is compiled with `-enable-testing` in a release build, so the targets can
//   `@testable import Providers` and reach the internal helpers that the stream relay and
//   the engine quirks use, with no change to the module's visibility.
// Keep the `Providers` target's dependencies and settings in step with the root manifest.

let swiftSettings: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
]

let nioCore = Target.Dependency.product(name: "NIOCore", package: "swift-nio")

/// One libFuzzer executable: a single file defining `LLVMFuzzerTestOneInput`, no `main`.
func fuzzTarget(_ name: String) -> Target {
    .executableTarget(name: name, dependencies: ["Providers", "FuzzSupport", nioCore], swiftSettings: swiftSettings)
}

let package = Package(
    name: "SwitchyardFuzz",
    platforms: [.macOS(.v15)],
    dependencies: [
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
    ],
    targets: [
        .target(
            name: "Providers",
            dependencies: [nioCore],
            swiftSettings: swiftSettings + [.unsafeFlags(["-enable-testing"])]
        ),
        .target(name: "FuzzSupport", dependencies: ["Providers", nioCore], swiftSettings: swiftSettings),
        fuzzTarget("FuzzRequestHead"),
        fuzzTarget("FuzzJSONScanner"),
        fuzzTarget("FuzzSSEParser"),
        fuzzTarget("FuzzOpenAIStream"),
        fuzzTarget("FuzzAnthropicStream"),
        fuzzTarget("FuzzGeminiStream"),
        fuzzTarget("FuzzResponses"),
    ]
)
