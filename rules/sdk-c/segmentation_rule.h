/*
 * segmentation_rule.h - write customer-segmentation rules (ABI v1) in C.
 *
 * A rule is a WASI preview1 command: the host writes one JSON document to
 * stdin and reads one JSON document from stdout; stderr is the rule's log.
 * This single header provides what a small rule needs:
 *
 *   - sr_read_input():  all of stdin as a NUL-terminated string;
 *   - sr_lookup():      find a value by path ("customer", "fields", "x");
 *   - sr_member():      one key of an object found before (look up `fields`
 *                       once, then each field in it);
 *   - sr_as_*():        read a found value as text, number, or boolean;
 *   - sr_output_*():    build and write the output document;
 *   - sr_spelled():     a value's JSON text, to log it without formatting it;
 *   - sr_log():         write one log line from pieces, in one host call;
 *   - sr_fail():        log a message and exit non-zero.
 *
 * The JSON reader is deliberately minimal: it walks the document without
 * building a tree, which is enough for flat custom fields. Pointers it returns
 * point into the input buffer.
 *
 * Build: clang --target=wasm32-wasi --sysroot=/usr/lib/wasm32-wasi -O2 rule.c
 */
#ifndef SEGMENTATION_RULE_H
#define SEGMENTATION_RULE_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define SR_ABI_VERSION 1
#define SR_EXIT_RULE_ERROR 1
#define SR_EXIT_BAD_INPUT 2

/* Logs a formatted message to stderr and exits with `status`. */
static inline void sr_fail(int status, const char *format, ...) {
    va_list args;
    va_start(args, format);
    vfprintf(stderr, format, args);
    va_end(args);
    fputc('\n', stderr);
    exit(status);
}

/* Writes one line to the log (stderr) from NUL-terminated pieces, ending with NULL:
 *   sr_log("revenue ", text, " -> tier ", tier, NULL);
 * One host call and no printf: fprintf costs a small rule more than its logic
 * (stdio's formatting machinery, and wasi-libc formats floating point in software
 * 128-bit arithmetic). A line is cut at 255 bytes. */
static inline void sr_log(const char *piece, ...) {
    char line[256];
    size_t used = 0;
    va_list pieces;
    va_start(pieces, piece);
    for (; piece != NULL; piece = va_arg(pieces, const char *)) {
        size_t n = strlen(piece);
        if (n > sizeof line - 1 - used) n = sizeof line - 1 - used;
        memcpy(line + used, piece, n);
        used += n;
    }
    va_end(pieces);
    line[used++] = '\n';
    ssize_t ignored = write(2, line, used);
    (void)ignored;
}

/* Reads all of stdin into a NUL-terminated heap buffer. Exits on failure.
 * read(2) rather than stdio: no buffer copy, and two host calls for a typical
 * input (the data, then end of file). */
static inline char *sr_read_input(size_t *length) {
    size_t capacity = 4096, used = 0;
    char *buffer = malloc(capacity);
    if (buffer == NULL) sr_fail(SR_EXIT_BAD_INPUT, "out of memory reading input");
    for (;;) {
        if (capacity - used < 2) {
            char *grown = realloc(buffer, capacity * 2);
            if (grown == NULL) sr_fail(SR_EXIT_BAD_INPUT, "out of memory reading input");
            buffer = grown;
            capacity *= 2;
        }
        ssize_t n = read(0, buffer + used, capacity - used - 1);
        if (n < 0) sr_fail(SR_EXIT_BAD_INPUT, "cannot read stdin");
        if (n == 0) break;
        used += (size_t)n;
    }
    buffer[used] = '\0';
    if (length != NULL) *length = used;
    return buffer;
}

/* ---- Reading JSON ------------------------------------------------------ */

static inline const char *sr_skip_space(const char *p) {
    while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r') p++;
    return p;
}

/* Returns the character after the string starting at `p` (which is at '"'),
 * or NULL if it is unterminated. */
static inline const char *sr_skip_string(const char *p) {
    for (p++; *p != '\0'; p++) {
        if (*p == '\\') {
            if (p[1] == '\0') return NULL;
            p++;
        } else if (*p == '"') {
            return p + 1;
        }
    }
    return NULL;
}

/* True for the characters that end a number or literal (and for the NUL). */
static inline int sr_ends_scalar(char c) {
    switch (c) {
    case '\0': case ',': case '}': case ']': case ' ': case '\t': case '\r': case '\n':
        return 1;
    default:
        return 0;
    }
}

/* Returns the character after the JSON value starting at `p`, or NULL when
 * the value is malformed. Validation is shallow: enough to skip values. */
static inline const char *sr_skip_value(const char *p) {
    p = sr_skip_space(p);
    if (*p == '"') return sr_skip_string(p);
    if (*p == '{' || *p == '[') {
        int depth = 0;
        while (*p != '\0') {
            if (*p == '"') {
                p = sr_skip_string(p);
                if (p == NULL) return NULL;
                continue;
            }
            if (*p == '{' || *p == '[') depth++;
            if (*p == '}' || *p == ']') {
                depth--;
                if (depth == 0) return p + 1;
            }
            p++;
        }
        return NULL;
    }
    /* number, true, false, null */
    const char *start = p;
    while (!sr_ends_scalar(*p)) p++;
    return p == start ? NULL : p;
}

/* Compares the JSON string at `p` (at '"') with `key`; escapes never match. */
static inline int sr_key_equals(const char *p, const char *key) {
    size_t n = strlen(key);
    return strncmp(p + 1, key, n) == 0 && p[1 + n] == '"';
}

/* Returns the value of `key` in the object starting at `object`, or NULL (also
 * when `object` is NULL or not an object). */
static inline const char *sr_member(const char *object, const char *key) {
    if (object == NULL) return NULL;
    const char *p = sr_skip_space(object);
    if (*p != '{') return NULL;
    p = sr_skip_space(p + 1);
    while (*p == '"') {
        int match = sr_key_equals(p, key);
        p = sr_skip_string(p);
        if (p == NULL) return NULL;
        p = sr_skip_space(p);
        if (*p != ':') return NULL;
        p = sr_skip_space(p + 1);
        if (match) return p;
        p = sr_skip_value(p);
        if (p == NULL) return NULL;
        p = sr_skip_space(p);
        if (*p != ',') return NULL;
        p = sr_skip_space(p + 1);
    }
    return NULL;
}

/* Follows a path of object keys, ending with NULL:
 *   sr_lookup(input, "customer", "fields", "annual_revenue", NULL)
 * Returns a pointer to the value, or NULL when any step is missing. */
static inline const char *sr_lookup(const char *json, ...) {
    va_list keys;
    va_start(keys, json);
    const char *value = json;
    const char *key;
    while (value != NULL && (key = va_arg(keys, const char *)) != NULL) {
        value = sr_member(value, key);
    }
    va_end(keys);
    return value;
}

/* True when `value` is missing or JSON null. */
static inline int sr_is_null(const char *value) {
    return value == NULL || strncmp(value, "null", 4) == 0;
}

/* Copies the JSON string `value` into `out` (at most `capacity` bytes with
 * the NUL), decoding simple escapes; \u escapes become '?'. Returns 1 on
 * success, 0 when `value` is not a string or does not fit. */
static inline int sr_as_text(const char *value, char *out, size_t capacity) {
    if (value == NULL || *value != '"' || capacity == 0) return 0;
    size_t used = 0;
    for (const char *p = value + 1; *p != '"'; p++) {
        char c = *p;
        if (c == '\0') return 0;
        if (c == '\\') {
            p++;
            switch (*p) {
            case 'n': c = '\n'; break;
            case 't': c = '\t'; break;
            case 'r': c = '\r'; break;
            case 'b': c = '\b'; break;
            case 'f': c = '\f'; break;
            case 'u':
                for (int i = 1; i <= 4; i++)
                    if (p[i] == '\0') return 0;
                p += 4;
                c = '?';
                break;
            case '\0': return 0;
            default: c = *p; break; /* \" \\ \/ */
            }
        }
        if (used + 1 >= capacity) return 0;
        out[used++] = c;
    }
    out[used] = '\0';
    return 1;
}

/* Copies the JSON text of `value` as the input spelled it into `out` (at most
 * `capacity` bytes with the NUL): a number's digits, `true`, a string without its
 * quotes (escapes kept as written); "null" when `value` is NULL. For logging a
 * value without formatting it. Returns 1, or 0 when it was cut. */
static inline int sr_spelled(const char *value, char *out, size_t capacity) {
    if (capacity == 0) return 0;
    const char *start = value == NULL ? "null" : value;
    const char *end = value == NULL ? start + 4 : sr_skip_value(start);
    if (end == NULL) end = start;
    if (*start == '"' && end - start >= 2) {
        start++;
        end--;
    }
    size_t n = (size_t)(end - start);
    int whole = n < capacity;
    if (!whole) n = capacity - 1;
    memcpy(out, start, n);
    out[n] = '\0';
    return whole;
}

/* The common case of strtod, exactly: `[-|+]digits[.digits]` with at most 15
 * significant digits and at most 22 after the point is one correctly rounded
 * division of two doubles that are exact (digits < 2^53, 10^k <= 10^22).
 * wasi-libc's strtod computes in 128-bit soft floats, a few thousand wasm
 * instructions; this is a few dozen. Returns 0 (leaving the rest to strtod) for
 * anything else, e.g. exponents or long mantissas. */
static inline int sr_decimal_fast(const char *p, double *out, char **end) {
    static const double powers[] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,
                                    1e8,  1e9,  1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
                                    1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};
    const char *q = p;
    int negative = *q == '-';
    if (*q == '-' || *q == '+') q++;
    uint64_t digits = 0;
    int count = 0, scale = 0;
    for (; *q >= '0' && *q <= '9'; q++, count++) digits = digits * 10 + (uint64_t)(*q - '0');
    if (count == 0) return 0;
    if (*q == '.') {
        q++;
        if (*q < '0' || *q > '9') return 0;
        for (; *q >= '0' && *q <= '9'; q++, count++, scale++)
            digits = digits * 10 + (uint64_t)(*q - '0');
    }
    if (count > 15 || scale > 22 || *q == 'e' || *q == 'E') return 0;
    double value = (double)digits / powers[scale];
    *out = negative ? -value : value;
    *end = (char *)q;
    return 1;
}

/* Reads a number given as a JSON number or as a decimal string such as
 * "12500.50" (decimal fields travel as strings). Returns 1 on success. */
static inline int sr_as_number(const char *value, double *out) {
    if (value == NULL) return 0;
    int quoted = *value == '"';
    const char *p = value + quoted;
    const char *q = p;
    if (*q == '-' || (quoted && *q == '+')) q++;
    if (*q < '0' || *q > '9') return 0; /* rejects inf, nan, hex */
    if (quoted) { /* decimal strings: digits[.digits] only */
        while (*q >= '0' && *q <= '9') q++;
        if (*q == '.') {
            q++;
            if (*q < '0' || *q > '9') return 0;
            while (*q >= '0' && *q <= '9') q++;
        }
        if (*q != '"') return 0;
    }
    char *end;
    double number;
    if (!sr_decimal_fast(p, &number, &end)) number = strtod(p, &end);
    if (end == p) return 0;
    if (quoted ? *end != '"' : !sr_ends_scalar(*end)) return 0;
    *out = number;
    return 1;
}

/* Reads a JSON boolean. Returns 1 on success. */
static inline int sr_as_bool(const char *value, int *out) {
    if (value == NULL) return 0;
    if (strncmp(value, "true", 4) == 0) { *out = 1; return 1; }
    if (strncmp(value, "false", 5) == 0) { *out = 0; return 1; }
    return 0;
}

/* ---- Writing the output ------------------------------------------------ */

/* An output document under construction. */
typedef struct {
    char *buffer;
    size_t length, capacity;
    int clusters;
} sr_output;

/* What to do with the customer's segment. */
typedef enum {
    SR_SEGMENT_UNCHANGED, /* `segment` absent */
    SR_SEGMENT_CLEAR,     /* "segment": null */
    SR_SEGMENT_SET        /* "segment": "<name or id>" */
} sr_segment;

static inline void sr_put(sr_output *out, const char *text, size_t n) {
    if (out->length + n + 1 > out->capacity) {
        size_t capacity = out->capacity ? out->capacity : 256;
        while (out->length + n + 1 > capacity) capacity *= 2;
        char *grown = realloc(out->buffer, capacity);
        if (grown == NULL) sr_fail(SR_EXIT_RULE_ERROR, "out of memory writing output");
        out->buffer = grown;
        out->capacity = capacity;
    }
    memcpy(out->buffer + out->length, text, n);
    out->length += n;
    out->buffer[out->length] = '\0';
}

static inline void sr_put_str(sr_output *out, const char *text) { sr_put(out, text, strlen(text)); }

/* Writes `text` as a JSON string literal: runs of plain characters at once. */
static inline void sr_put_quoted(sr_output *out, const char *text) {
    static const char hex[] = "0123456789abcdef";
    sr_put(out, "\"", 1);
    const unsigned char *run = (const unsigned char *)text, *p = run;
    for (; *p != '\0'; p++) {
        if (*p != '"' && *p != '\\' && *p >= 0x20) continue;
        sr_put(out, (const char *)run, (size_t)(p - run));
        if (*p < 0x20) {
            char escaped[6] = {'\\', 'u', '0', '0', hex[*p >> 4], hex[*p & 0xf]};
            sr_put(out, escaped, 6);
        } else {
            char escaped[2] = {'\\', (char)*p};
            sr_put(out, escaped, 2);
        }
        run = p + 1;
    }
    sr_put(out, (const char *)run, (size_t)(p - run));
    sr_put(out, "\"", 1);
}

static inline void sr_output_init(sr_output *out) {
    out->buffer = NULL;
    out->length = out->capacity = 0;
    out->clusters = 0;
    sr_put_str(out, "{\"clusters\":{");
}

static inline void sr_cluster_key(sr_output *out, const char *name) {
    if (out->clusters++ > 0) sr_put(out, ",", 1);
    sr_put_quoted(out, name);
    sr_put(out, ":", 1);
}

/* Sets a text cluster value. */
static inline void sr_cluster_text(sr_output *out, const char *name, const char *value) {
    sr_cluster_key(out, name);
    sr_put_quoted(out, value);
}

/* Sets a boolean cluster value. */
static inline void sr_cluster_bool(sr_output *out, const char *name, int value) {
    sr_cluster_key(out, name);
    sr_put_str(out, value ? "true" : "false");
}

/* Sets a numeric cluster value (must be finite). */
static inline void sr_cluster_number(sr_output *out, const char *name, double value) {
    char text[32];
    snprintf(text, sizeof text, "%.17g", value);
    sr_cluster_key(out, name);
    sr_put_str(out, text);
}

/* Finishes the document, writes it to stdout and frees it. `segment` is the
 * segment name or id for SR_SEGMENT_SET and ignored otherwise. */
static inline void sr_output_write(sr_output *out, sr_segment choice, const char *segment) {
    sr_put(out, "}", 1);
    if (choice == SR_SEGMENT_CLEAR) {
        sr_put_str(out, ",\"segment\":null");
    } else if (choice == SR_SEGMENT_SET) {
        sr_put_str(out, ",\"segment\":");
        sr_put_quoted(out, segment);
    }
    sr_put(out, "}", 1);
    for (size_t written = 0; written < out->length;) {
        ssize_t n = write(1, out->buffer + written, out->length - written);
        if (n <= 0) sr_fail(SR_EXIT_RULE_ERROR, "cannot write output");
        written += (size_t)n;
    }
    free(out->buffer);
    out->buffer = NULL;
}

#endif /* SEGMENTATION_RULE_H */
