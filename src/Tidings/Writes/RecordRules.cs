using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using NJsonSchema.Validation;
using Tidings.Collections;

namespace Tidings.Writes;

/// <summary>
/// Turns a client's body into the fields to store, by the collection's write rules: writable fields are
/// taken, server-owned fields ignored, stamped fields set by the server (a different value from the
/// client is refused), anything else refused. Then the result is checked against the JSON Schema.
/// </summary>
internal static class RecordRules
{
    public enum Mode
    {
        Create,
        Replace,
        Patch,
    }

    /// <summary>
    /// The record's own fields after applying <paramref name="input"/>; what is wrong with them goes into
    /// <paramref name="errors"/>. The fields come back either way, so access rules can be checked first: a caller
    /// who may not write learns nothing about the schema.
    /// </summary>
    public static JsonObject Apply(CollectionDefinition collection, JsonObject input, JsonObject? existing, Mode mode, StampContext stampContext,
        Dictionary<string, List<string>> errors)
    {
        var result = new JsonObject();
        if (existing is not null)
        {
            foreach (var (name, value) in existing)
            {
                if (!collection.IsServerField(name))
                {
                    result[name] = value?.DeepClone();
                }
            }
        }

        if (mode == Mode.Replace)
        {
            // A replace sets every writable field: those the body leaves out are removed.
            foreach (var field in collection.Writable)
            {
                result.Remove(field);
            }
        }

        foreach (var (name, value) in input)
        {
            // Checked first: such a field cannot be validated, stored as sent, or named in an error as it is.
            if (!IsText(name))
            {
                Add(errors, "", "A field name is not Unicode text (it holds a lone surrogate).");
                continue;
            }

            if (Unstorable(value) is { } why)
            {
                Add(errors, name, $"'{name}' {why}");
                continue;
            }

            if (collection.IsServerField(name))
            {
                continue; // Owned by the server; clients echo them back (Backbone's save), so they are ignored.
            }

            if (collection.Stamps.TryGetValue(name, out var stamp))
            {
                var expected = mode == Mode.Create || stamp.OnUpdate ? stamp.Value(stampContext) : existing?[name];
                if (!JsonNode.DeepEquals(value, expected))
                {
                    Add(errors, name, $"'{name}' is set by the server and cannot be written.");
                }

                continue;
            }

            if (!collection.Writable.Contains(name))
            {
                Add(errors, name, $"'{name}' may not be written in this collection.");
                continue;
            }

            if (mode == Mode.Patch && value is null)
            {
                result.Remove(name); // JSON merge patch: null removes the field.
            }
            else
            {
                result[name] = value?.DeepClone();
            }
        }

        if (mode == Mode.Create)
        {
            foreach (var (field, value) in collection.Defaults)
            {
                if (!result.ContainsKey(field))
                {
                    result[field] = value?.DeepClone();
                }
            }
        }

        foreach (var (field, stamp) in collection.Stamps)
        {
            if (mode == Mode.Create || stamp.OnUpdate)
            {
                result[field] = stamp.Value(stampContext)?.DeepClone();
            }
        }

        // Validate even when the rules already refused a field, so one answer lists everything to fix.
        foreach (var error in collection.Schema.Validate(result.ToJsonString()))
        {
            Describe(error, errors);
        }

        return result;
    }

    /// <summary>
    /// Why a value cannot be stored as sent, or null. JSON allows numbers no double holds (<c>1e400</c>): stored verbatim
    /// they read as Infinity in JavaScript. .NET strings may hold lone surrogates (from code, or <c>"\ud800"</c> in JSON):
    /// they cannot be written out as UTF-8 at all. Both are refused per field (issue 16).
    /// </summary>
    internal static string? Unstorable(JsonNode? node)
    {
        switch (node)
        {
            case JsonObject record:
                foreach (var (name, value) in record)
                {
                    if (!IsText(name))
                    {
                        return NotText;
                    }

                    if (Unstorable(value) is { } why)
                    {
                        return why;
                    }
                }

                return null;
            case JsonArray items:
                foreach (var item in items)
                {
                    if (Unstorable(item) is { } why)
                    {
                        return why;
                    }
                }

                return null;
            case JsonValue value when value.GetValueKind() == JsonValueKind.String:
                try
                {
                    return IsText(value.GetValue<string>()) ? null : NotText;
                }
                catch (InvalidOperationException)
                {
                    return NotText; // an escaped lone surrogate that cannot even be read as a string
                }

            case JsonValue value when value.GetValueKind() == JsonValueKind.Number:
                return IsFiniteDouble(value) ? null : "is a number beyond the range of a double (such as 1e400).";
            default:
                return null;
        }
    }

    private const string NotText = "holds text that is not Unicode (a lone surrogate).";

    private static bool IsFiniteDouble(JsonValue value)
    {
        if (value.TryGetValue<JsonElement>(out var element))
        {
            // double.Parse reads an out-of-range number as infinity rather than failing.
            return double.TryParse(element.GetRawText(), NumberStyles.Float, CultureInfo.InvariantCulture, out var parsed) && double.IsFinite(parsed);
        }

        return value.TryGetValue<double>(out var d) ? double.IsFinite(d) : !value.TryGetValue<float>(out var f) || float.IsFinite(f);
    }

    /// <summary>False when <paramref name="text"/> holds a surrogate that is not half of a pair.</summary>
    private static bool IsText(string text)
    {
        for (var i = 0; i < text.Length; i++)
        {
            if (char.IsHighSurrogate(text[i]) && i + 1 < text.Length && char.IsLowSurrogate(text[i + 1]))
            {
                i++;
            }
            else if (char.IsSurrogate(text[i]))
            {
                return false;
            }
        }

        return true;
    }

    private static void Describe(ValidationError error, Dictionary<string, List<string>> errors)
    {
        if (error is ChildSchemaValidationError child)
        {
            foreach (var inner in child.Errors.SelectMany(e => e.Value))
            {
                Describe(inner, errors);
            }
        }

        var field = error.Kind == ValidationErrorKind.PropertyRequired
            ? error.Property ?? ""
            : (error.Path ?? "").TrimStart('#', '/').Replace('/', '.');
        if (field.Length == 0)
        {
            field = error.Property ?? "";
        }

        Add(errors, field, field.Length == 0 ? "The record " + Message(error) : $"'{field}' {Message(error)}");
    }

    private static string Message(ValidationError error) => error.Kind switch
    {
        ValidationErrorKind.PropertyRequired => "is required.",
        ValidationErrorKind.StringTooShort => $"is too short (at least {error.Schema?.MinLength} characters).",
        ValidationErrorKind.StringTooLong => $"is too long (at most {error.Schema?.MaxLength} characters).",
        ValidationErrorKind.StringExpected => "must be a string.",
        ValidationErrorKind.BooleanExpected => "must be true or false.",
        ValidationErrorKind.NumberExpected => "must be a number.",
        ValidationErrorKind.IntegerExpected => "must be an integer.",
        ValidationErrorKind.ArrayExpected => "must be an array.",
        ValidationErrorKind.ObjectExpected => "must be an object.",
        ValidationErrorKind.NoAdditionalPropertiesAllowed => "is not a field of this collection.",
        ValidationErrorKind.TooManyItems => $"has too many items (at most {error.Schema?.MaxItems}).",
        ValidationErrorKind.NumberTooSmall => $"is too small (minimum {error.Schema?.Minimum}).",
        ValidationErrorKind.NumberTooBig => $"is too big (maximum {error.Schema?.Maximum}).",
        _ => $"is invalid ({error.Kind}).",
    };

    private static void Add(Dictionary<string, List<string>> errors, string field, string message)
    {
        if (!errors.TryGetValue(field, out var list))
        {
            errors[field] = list = [];
        }

        if (!list.Contains(message))
        {
            list.Add(message);
        }
    }
}
