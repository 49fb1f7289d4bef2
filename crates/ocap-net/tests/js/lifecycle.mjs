// Shared by peer.mjs and relay.mjs: stay up until the Rust test closes our stdin, then stop
// the node (at most 5 s) and exit.

/** @param {{ stop(): Promise<void> }} node */
export const stopWhenStdinCloses = async (node) => {
  await new Promise((resolve) => {
    process.stdin.on('end', resolve)
    process.stdin.on('close', resolve)
    process.stdin.resume()
  })
  await Promise.race([node.stop(), new Promise((resolve) => setTimeout(resolve, 5000))])
  process.exit(0)
}
