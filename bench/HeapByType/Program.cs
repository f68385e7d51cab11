using System.Globalization;
using Microsoft.Diagnostics.Tracing;
using Microsoft.Diagnostics.Tracing.Parsers;

// Live managed objects by type, from a nettrace taken with the GC heap-snapshot keywords (what dotnet-gcdump
// asks for): dotnet-trace collect -p PID --providers Microsoft-Windows-DotNETRuntime:0x1980001:5
//   HeapByType FILE                 one snapshot: bytes, objects, type — largest first
//   HeapByType BASE FILE N          the difference per unit: (FILE - BASE) / N, e.g. bytes per extra session
if (args.Length is not (1 or 3))
{
    Console.Error.WriteLine("usage: HeapByType SNAPSHOT.nettrace | HeapByType BASE.nettrace SNAPSHOT.nettrace UNITS");
    return 2;
}

var after = Read(args[^(args.Length == 3 ? 2 : 1)]);
var before = args.Length == 3 ? Read(args[0]) : [];
var units = args.Length == 3 ? double.Parse(args[2], CultureInfo.InvariantCulture) : 1;

var rows = after.Keys.Union(before.Keys)
    .Select(type =>
    {
        after.TryGetValue(type, out var a);
        before.TryGetValue(type, out var b);
        return (Type: type, Bytes: (a.Bytes - b.Bytes) / units, Objects: (a.Objects - b.Objects) / units);
    })
    .OrderByDescending(r => r.Bytes)
    .ToList();

Console.WriteLine($"{rows.Sum(r => r.Bytes),12:F0} bytes {rows.Sum(r => r.Objects),10:F2} objects  total{(units == 1 ? "" : " per unit")}");
foreach (var (type, bytes, objects) in rows.Where(r => Math.Abs(r.Bytes) >= 1))
{
    Console.WriteLine($"{bytes,12:F0} bytes {objects,10:F2} objects  {type}");
}

return 0;

static Dictionary<string, (long Bytes, long Objects)> Read(string path)
{
    var names = new Dictionary<ulong, string>();
    var byTypeId = new Dictionary<ulong, (long Bytes, long Objects)>();
    using (var source = new EventPipeEventSource(path))
    {
        var clr = new ClrTraceEventParser(source);
        clr.TypeBulkType += data =>
        {
            for (var i = 0; i < data.Count; i++)
            {
                names[data.Values(i).TypeID] = data.Values(i).TypeName;
            }
        };
        clr.GCBulkNode += data =>
        {
            for (var i = 0; i < data.Count; i++)
            {
                var node = data.Values(i);
                byTypeId.TryGetValue(node.TypeID, out var sum);
                byTypeId[node.TypeID] = (sum.Bytes + (long)node.Size, sum.Objects + 1);
            }
        };
        source.Process();
    }

    if (byTypeId.Count == 0)
    {
        throw new InvalidDataException($"{path} holds no heap snapshot (was the GC heap-snapshot keyword 0x1980001 enabled?)");
    }

    // Generic instantiations can share a name across type ids: add them up by name.
    var byName = new Dictionary<string, (long Bytes, long Objects)>();
    foreach (var (id, sum) in byTypeId)
    {
        var name = names.GetValueOrDefault(id, $"type 0x{id:x}");
        byName.TryGetValue(name, out var total);
        byName[name] = (total.Bytes + sum.Bytes, total.Objects + sum.Objects);
    }

    return byName;
}
