#include "backend/cuda/cuda_bind.h"

#include <hwloc.h>
#include <hwloc/cudart.h>
#include <stdio.h>
#include <string.h>

int cuda_bind_near_device(int device, cuda_binding *out, char *msg, size_t msg_size) {
  memset(out, 0, sizeof *out);
  out->numa_node = -1;
  hwloc_topology_t topo;
  if (hwloc_topology_init(&topo) < 0 || hwloc_topology_load(topo) < 0) {
    snprintf(msg, msg_size, "hwloc could not load the topology");
    return -1;
  }
  int rc = -1;
  hwloc_bitmap_t gpu = hwloc_bitmap_alloc(), set = hwloc_bitmap_alloc();
  if (!gpu || !set) {
    snprintf(msg, msg_size, "hwloc bitmap allocation failed");
    goto done;
  }
  if (hwloc_cudart_get_device_cpuset(topo, device, gpu) < 0) {
    snprintf(msg, msg_size, "cannot read the CPU locality of CUDA device %d", device);
    goto done;
  }
  hwloc_bitmap_and(set, gpu, hwloc_topology_get_allowed_cpuset(topo));
  out->gpu_local = 1;
  if (hwloc_bitmap_iszero(set)) {
    // The scheduler gave us cores on the other socket only: use what we may.
    hwloc_bitmap_copy(set, hwloc_topology_get_allowed_cpuset(topo));
    out->gpu_local = 0;
  }
  if (hwloc_set_cpubind(topo, set, HWLOC_CPUBIND_PROCESS) < 0) {
    snprintf(msg, msg_size, "hwloc_set_cpubind failed for device %d", device);
    goto done;
  }
  // Memory: bind to the NUMA node(s) of those cores (first touch happens later).
  hwloc_bitmap_t nodes = hwloc_bitmap_alloc();
  if (nodes) {
    hwloc_cpuset_to_nodeset(topo, set, nodes);
    out->numa_node = hwloc_bitmap_first(nodes);
    if (!hwloc_bitmap_iszero(nodes))
      (void)hwloc_set_membind(topo, nodes, HWLOC_MEMBIND_BIND,
                              HWLOC_MEMBIND_PROCESS | HWLOC_MEMBIND_BYNODESET);
    hwloc_bitmap_free(nodes);
  }
  out->cores = hwloc_get_nbobjs_inside_cpuset_by_type(topo, set, HWLOC_OBJ_CORE);
  hwloc_bitmap_list_snprintf(out->cpuset, sizeof out->cpuset, set);
  snprintf(msg, msg_size, "GPU %d: %d cores %s%s, NUMA node %d", device, out->cores, out->cpuset,
           out->gpu_local ? "" : " (no allowed core is GPU-local)", out->numa_node);
  rc = 0;
done:
  if (gpu) hwloc_bitmap_free(gpu);
  if (set) hwloc_bitmap_free(set);
  hwloc_topology_destroy(topo);
  return rc;
}
