{#- Text cleaning shared by the staging model. Every export writes "missing" its own
    way; all of these spellings become NULL so that imputation, not parsing, handles them. -#}
{% macro missing_tokens() -%}
    ('', 'na', 'n/a', 'n.a.', 'nan', 'null', 'none', '-', '?', '#n/a')
{%- endmacro %}

{#- Trimmed text with inner runs of white space folded; NULL when it spells "missing". -#}
{% macro clean_text(column) -%}
    case
        when lower(trim(regexp_replace({{ column }}, '\s+', ' ', 'g'))) in {{ missing_tokens() }} then null
        else trim(regexp_replace({{ column }}, '\s+', ' ', 'g'))
    end
{%- endmacro %}

{#- Lower-cased cleaned text: the key that category lookups join on. -#}
{% macro category_key(column) -%}
    lower({{ clean_text(column) }})
{%- endmacro %}

{#- A number written with a decimal point or a decimal comma; NULL when it does not parse. -#}
{% macro parse_number(column) -%}
    try_cast(replace({{ clean_text(column) }}, ',', '.') as double)
{%- endmacro %}

{#- Yes/No in the spellings CRM exports use (English, French, letters, digits, booleans);
    NULL when missing or not recognised (the validation model tells the two apart). -#}
{% macro parse_boolean(column) -%}
    case
        when {{ category_key(column) }} in ('yes', 'y', 'oui', 'o', 'true', 't', '1', '1.0', 'vrai') then true
        when {{ category_key(column) }} in ('no', 'n', 'non', 'false', 'f', '0', '0.0', 'faux') then false
    end
{%- endmacro %}

{#- Quoting for SQL generated from data (column names found in the user's file): a name
    may hold any character, quotes included, and must stay a name or a string. -#}
{% macro sql_identifier(name) -%}
    "{{ name | replace('"', '""') }}"
{%- endmacro %}

{% macro sql_string(value) -%}
    '{{ value | replace("'", "''") }}'
{%- endmacro %}
