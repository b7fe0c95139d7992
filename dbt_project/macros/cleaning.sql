{#- Text cleaning shared by the generated models. Every export writes "missing" its own
    way; the declared spellings become NULL so that imputation, not parsing, handles them.
    What differs between engines goes through adapter.dispatch (DuckDB and Spark). -#}

{#- Inner runs of white space folded to one space. -#}
{% macro squish(expression) -%}
    {{ return(adapter.dispatch('squish')(expression)) }}
{%- endmacro %}

{% macro default__squish(expression) -%}
    trim(regexp_replace({{ expression }}, '\\s+', ' '))
{%- endmacro %}

{% macro duckdb__squish(expression) -%}
    trim(regexp_replace({{ expression }}, '\s+', ' ', 'g'))
{%- endmacro %}

{#- Text already folded (`squish`), NULL when it spells "missing". The models fold each value
    in a CTE of their own and call this on the folded column: in one expression the fold
    appears twice, and DuckDB computes it twice (a fifth of staging's time at ten million rows). -#}
{% macro missing_as_null(expression, missing=none) -%}
    case
        when lower({{ expression }}) in ({{ sql_list(missing or var('missing_values')) }}) then null
        else {{ expression }}
    end
{%- endmacro %}

{#- Values present and distinct values of each input column, one row per column. Each
    column's distinct values are counted first and cleaned after: most columns hold few
    distinct spellings, and cleaning those rather than every row is what keeps this cheap at
    millions of rows (the counts are the same: cleaning is a function of the value). -#}
{% macro column_value_counts(columns, relation) -%}
    {%- for column in columns %}
    select
        {{ sql_string(column.name) }} as loaded_as,
        cast(coalesce(sum(case when cleaned_value is not null then records end), 0) as bigint) as values_present,
        count(distinct cleaned_value) as distinct_values

    from (
        select
            {{ missing_as_null('folded_value') }} as cleaned_value,
            records

        from (
            select
                {{ squish('raw_value') }} as folded_value,
                records

            from (
                select
                    {{ sql_identifier(column.name) }} as raw_value,
                    count(*) as records

                from {{ relation }}
                group by {{ sql_identifier(column.name) }}
            ) as raw_values
        ) as folded_values
    ) as cleaned_values
    {{ "union all" if not loop.last }}
    {%- endfor %}
{%- endmacro %}

{#- Characters a number may carry that are not part of it: spaces (also the no-break and
    narrow no-break spaces French tools write as thousands separators) and currency signs. -#}
{% macro strip_number(expression) -%}
    {{ return(adapter.dispatch('strip_number')(expression)) }}
{%- endmacro %}

{% macro default__strip_number(expression) -%}
    regexp_replace({{ expression }}, '[\\s\\u00A0\\u202F€$£]', '')
{%- endmacro %}

{% macro duckdb__strip_number(expression) -%}
    regexp_replace({{ expression }}, '[\s\x{00A0}\x{202F}€$£]', '', 'g')
{%- endmacro %}

{#- A number written with a decimal point or a decimal comma, with or without thousands
    separators (whichever of ',' and '.' comes last is the decimal mark); NULL when it
    does not parse. -#}
{% macro parse_number(expression) -%}
    {%- set text = strip_number(expression) -%}
    try_cast(
        case
            when instr({{ text }}, ',') > 0 and instr({{ text }}, '.') > 0 then
                case
                    when instr(reverse({{ text }}), ',') < instr(reverse({{ text }}), '.')
                        then replace(replace({{ text }}, '.', ''), ',', '.')
                    else replace({{ text }}, ',', '')
                end
            else replace({{ text }}, ',', '.')
        end as double
    )
{%- endmacro %}

{#- A date in a strptime format (%Y-%m-%d, %d/%m/%Y, …); NULL when it does not match. -#}
{% macro parse_date(expression, format) -%}
    {{ return(adapter.dispatch('parse_date')(expression, format)) }}
{%- endmacro %}

{% macro duckdb__parse_date(expression, format) -%}
    cast(try_strptime({{ expression }}, {{ sql_string(format) }}) as date)
{%- endmacro %}

{% macro default__parse_date(expression, format) -%}
    {%- set java = format | replace('%Y', 'yyyy') | replace('%m', 'MM') | replace('%d', 'dd') | replace('%y', 'yy')
        | replace('%H', 'HH') | replace('%M', 'mm') | replace('%S', 'ss') | replace('%b', 'MMM') | replace('%B', 'MMMM') -%}
    to_date(try_to_timestamp({{ expression }}, {{ sql_string(java) }}))
{%- endmacro %}

{#- The median, for imputation. -#}
{% macro median_of(expression) -%}
    {{ return(adapter.dispatch('median_of')(expression)) }}
{%- endmacro %}

{% macro default__median_of(expression) -%}
    median({{ expression }})
{%- endmacro %}

{#- Quoting for SQL generated from data (column names found in the user's file): a name
    may hold any character, quotes included, and must stay a name or a string. -#}
{% macro sql_identifier(name) -%}
    {{ return(adapter.dispatch('sql_identifier')(name)) }}
{%- endmacro %}

{% macro default__sql_identifier(name) -%}
    `{{ name | replace('`', '``') }}`
{%- endmacro %}

{% macro duckdb__sql_identifier(name) -%}
    "{{ name | replace('"', '""') }}"
{%- endmacro %}

{% macro sql_string(value) -%}
    {{ return(adapter.dispatch('sql_string')(value)) }}
{%- endmacro %}

{% macro default__sql_string(value) -%}
    '{{ value | replace("\\", "\\\\") | replace("'", "\\'") }}'
{%- endmacro %}

{% macro duckdb__sql_string(value) -%}
    '{{ value | replace("'", "''") }}'
{%- endmacro %}
