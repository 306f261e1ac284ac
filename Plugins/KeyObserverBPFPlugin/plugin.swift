// Builds the key observer's BPF program (keys.bpf.c in the target it is applied to)
// with the toolchain's clang, which has the bpf target, and turns the object into a
// Swift source holding it as base64 (Plugins/BPFEmbed runs both steps). So the object is made by
// every build, from source, and no binary is committed.
import PackagePlugin

@main
struct KeyObserverBPFPlugin: BuildToolPlugin {
    func createBuildCommands(context: PluginContext, target: Target) async throws -> [Command] {
        let clang = try context.tool(named: "clang")
        let embed = try context.tool(named: "bpf-embed")
        // Target.directoryURL needs tools 6.1; the target keeps the default Sources/NAME.
        let source = context.package.directoryURL.appending(path: "Sources/\(target.name)/keys.bpf.c")
        // The event layout is shared with the C loader, which owns it.
        let include = context.package.directoryURL.appending(path: "Sources/CKeyObserver/include")
        let object = context.pluginWorkDirectoryURL.appending(path: "keys.bpf.o")
        let generated = context.pluginWorkDirectoryURL.appending(path: "KeyObserverProgramObject.swift")
        // One command: bpf-embed runs clang itself. A build command's outputs become
        // the target's sources or resources, so the object must not be one of them
        // (SwiftPM would bundle it as a resource); only the Swift file is.
        return [
            .buildCommand(
                displayName: "Compiling and embedding BPF program keys.bpf.c",
                executable: embed.url,
                arguments: [
                    object.path, generated.path, clang.url.path,
                    // -g: libbpf needs the BTF it produces to relocate the kernel
                    // struct fields (CO-RE). The system headers give <linux/bpf.h>,
                    // libbpf's <bpf/bpf_helpers.h> and the x86-64 <asm/types.h>.
                    "-target", "bpf", "-O2", "-g", "-Wall",
                    "-I", include.path, "-I/usr/include/bpf", "-I/usr/include", "-I/usr/include/x86_64-linux-gnu",
                    "-c", source.path, "-o", object.path,
                ],
                inputFiles: [source, include.appending(path: "key_event.h"), clang.url],
                outputFiles: [generated]
            ),
        ]
    }
}
